using System.Text;
using System.Text.Json;
using QuantPeft.Memory.Planning;

namespace QuantPeft.Memory.Reports;

/// <summary>
/// What the single-device and the sharded plan JSON (docs/planner.md) have in common: the indented UTF-8 document,
/// the workload's and the budget's fields, a strategy's knobs, breakdowns, the scores and the ranked candidate list with the chosen index.
/// </summary>
internal static class PlanJsonParts
{
    /// <summary>The document <paramref name="body"/> writes, indented, with a final newline.</summary>
    public static string Document(Action<Utf8JsonWriter> body)
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
            body(w);
        return Encoding.UTF8.GetString(stream.ToArray()) + "\n";
    }

    /// <summary>A byte count, or null when there is none.</summary>
    public static void NumberOrNull(Utf8JsonWriter w, string name, long? value)
    {
        if (value is { } v) w.WriteNumber(name, v);
        else w.WriteNull(name);
    }

    /// <summary>Opens the <c>workload</c> object with the fields every plan has; the caller adds its own and closes it.</summary>
    public static void StartWorkload(Utf8JsonWriter w, Workload workload)
    {
        w.WriteStartObject("workload");
        w.WriteNumber("seq", workload.Seq);
        w.WriteNumber("grad_accum", workload.GradAccum);
        w.WriteNumber("adapter_dropout", workload.AdapterDropout);
    }

    /// <summary>
    /// Opens the <c>budget</c> object with the fields every plan has (the device budget under
    /// <paramref name="vramName"/>); the caller adds its own and closes it.
    /// </summary>
    public static void StartBudget(Utf8JsonWriter w, Budget budget, string vramName)
    {
        w.WriteStartObject("budget");
        NumberOrNull(w, vramName, budget.Vram);
        NumberOrNull(w, "ram_bytes", budget.Ram);
        w.WriteNumber("overhead_bytes", budget.EffectiveOverhead);
        w.WriteNumber("fragmentation", budget.EffectiveFragmentation);
    }

    /// <summary>
    /// Opens the <c>strategy</c> object with the knobs every plan has (base weights, method, rank, targets, optimizer);
    /// the caller adds its own and closes it.
    /// </summary>
    public static void StartStrategy(Utf8JsonWriter w, Strategy s)
    {
        w.WriteStartObject("strategy");
        w.WriteString("weights", Knob.Name(s.Weights, s.LqLoraBits));
        w.WriteBoolean("double_quant", s.DoubleQuant);
        w.WriteString("method", Knob.Name(s.Method));
        w.WriteNumber("rank", s.Rank);
        if (s.IsAdapterMethod) w.WriteString("targets", s.Targets.ToKnob());
        else w.WriteNull("targets");
        w.WriteString("optimizer", Knob.Name(s.Optimizer));
    }

    /// <summary>An object of byte counts by component name, in the order given.</summary>
    public static void Breakdown(Utf8JsonWriter w, string name, IEnumerable<(string Component, long Bytes)> rows)
    {
        w.WriteStartObject(name);
        foreach (var (component, bytes) in rows) w.WriteNumber(component, bytes);
        w.WriteEndObject();
    }

    /// <summary>The ranking scores, rounded so the file does not carry floating-point noise.</summary>
    public static void Scores(Utf8JsonWriter w, double quality, double speedFactor)
    {
        w.WriteNumber("quality", Math.Round(quality, 3));
        w.WriteNumber("speed_factor", Math.Round(speedFactor, 4));
    }

    /// <summary>
    /// <c>candidate_count</c>, the first <paramref name="max"/> candidates (null: all) and <c>chosen</c>: 0 when the
    /// first candidate fits, otherwise null.
    /// </summary>
    public static void Candidates<T>(Utf8JsonWriter w, IReadOnlyList<T> candidates, int? max, bool firstFits, Action<Utf8JsonWriter, T> write)
    {
        w.WriteNumber("candidate_count", candidates.Count);
        w.WriteStartArray("candidates");
        foreach (T c in candidates.Take(max ?? int.MaxValue)) write(w, c);
        w.WriteEndArray();
        NumberOrNull(w, "chosen", firstFits ? 0 : null);
    }
}
