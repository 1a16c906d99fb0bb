using System.Reflection;
using System.Text.Json;

namespace QuantPeft.Memory.Planning;

/// <summary>
/// One kind of strategy whose measured peak the cost model does not yet meet within ±5 % (and never more than 5 %
/// under) on some calibrated shape: the planner leaves it out of every search in which its method is open.
/// </summary>
/// <param name="Method">The method.</param>
/// <param name="Weights">The base format it applies to, or null for every format.</param>
/// <param name="DeviceKind">The device kind it was measured on.</param>
/// <param name="MeasuredError">The worst measured error, (predicted − measured) / measured, as a fraction; null for a
/// strategy never measured against the current cost model (a new method is out of open searches until it is).</param>
/// <param name="Cell">Where that error was measured (model, strategy, batch × seq, commit).</param>
/// <param name="MinTokens">Tokens per micro-batch (b·s) from which it applies: the smallest failing cell's, when a smaller
/// cell was measured within the target; 0 for every shape.</param>
/// <param name="Checkpointing">Whether it applies only with gradient checkpointing (true), only without (false), or either (null).</param>
public sealed record UncalibratedStrategy(TrainingMethod Method, WeightFormat? Weights, DeviceKind DeviceKind, double? MeasuredError, string Cell, long MinTokens = 0, bool? Checkpointing = null)
{
    /// <summary>Whether <paramref name="s"/> at <paramref name="seq"/> tokens per row on <paramref name="kind"/> is of this kind.</summary>
    public bool Matches(Strategy s, int seq, DeviceKind kind) =>
        s.Method == Method && kind == DeviceKind && (Weights is null || s.Weights == Weights) && (long)s.Batch * seq >= MinTokens
        && (Checkpointing is null || s.Checkpointing == Checkpointing);

    /// <summary>Why it is left out, for reports.</summary>
    public string Describe() =>
        $"{Knob.Name(Method)}{(Weights is { } w ? " " + Knob.Name(w) : "")}{(Checkpointing is { } c ? (c ? " with" : " without") + " checkpointing" : "")} on {DeviceKind.ToString().ToLowerInvariant()}"
        + (MinTokens > 0 ? $" from {MinTokens} tokens per micro-batch" : "") + (MeasuredError is { } error ? $": measured {error * 100:+0.0;-0.0} % at {Cell}" : $": not measured ({Cell})");
}

/// <summary>
/// The list of strategies the planner cannot yet price within its ±5 % target, kept as data
/// (<c>Memory/Planning/uncalibrated.json</c>, written from the calibration matrix in perf/results/bench-memory-matrix.md):
/// an entry leaves when a measurement of the current cost model meets the target, not when code changes.
/// </summary>
public static class UncalibratedStrategies
{
    private const string ResourceName = "QuantPeft.Memory.Planning.uncalibrated.json";

    /// <summary>The entries shipped with the planner.</summary>
    public static IReadOnlyList<UncalibratedStrategy> Shipped { get; } = Parse(ReadResource(), ResourceName);

    /// <summary>Whether the search must leave <paramref name="s"/> out: its method was not fixed by the caller and an entry matches it.</summary>
    public static bool Excludes(IReadOnlyList<UncalibratedStrategy> entries, Strategy s, Workload workload, Constraints constraints, DeviceKind kind) =>
        constraints.Method is null && entries.Any(e => e.Matches(s, workload.Seq, kind));

    /// <summary>Parses the JSON list (<c>{"entries": [{"method", "weights", "device_kind", "measured_error", "cell", "min_tokens", "checkpointing"}]}</c>; weights, min_tokens and checkpointing optional,
    /// measured_error a number or null for a strategy never measured).</summary>
    /// <exception cref="PlanningException">A field is missing or names an unknown method, format or device kind (message names the entry and field).</exception>
    public static IReadOnlyList<UncalibratedStrategy> Parse(string json, string origin)
    {
        using var doc = JsonDocument.Parse(json);
        var list = new List<UncalibratedStrategy>();
        int i = 0;
        foreach (JsonElement e in doc.RootElement.GetProperty("entries").EnumerateArray())
        {
            string where = $"{origin}: entries[{i++}]";
            string Field(string name) => e.TryGetProperty(name, out JsonElement v) && v.ValueKind == JsonValueKind.String
                ? v.GetString()! : throw new PlanningException($"{where}: missing string field '{name}'");
            TrainingMethod method = Knob.ParseMethod(Field("method"), $"{where}: method");
            WeightFormat? weights = e.TryGetProperty("weights", out JsonElement w) && w.ValueKind == JsonValueKind.String
                ? Knob.ParseWeights(w.GetString()!, $"{where}: weights").Format : null;
            DeviceKind kind = Field("device_kind") switch
            {
                "cpu" => DeviceKind.Cpu,
                "cuda" => DeviceKind.Cuda,
                string other => throw new PlanningException($"{where}: device_kind '{other}' is not cpu or cuda"),
            };
            double? error = e.TryGetProperty("measured_error", out JsonElement m) && m.ValueKind is JsonValueKind.Number or JsonValueKind.Null
                ? (m.ValueKind == JsonValueKind.Number ? m.GetDouble() : null)
                : throw new PlanningException($"{where}: missing field 'measured_error' (a number, or null for a strategy never measured)");
            long minTokens = e.TryGetProperty("min_tokens", out JsonElement t) && t.ValueKind == JsonValueKind.Number ? t.GetInt64() : 0;
            bool? checkpointing = e.TryGetProperty("checkpointing", out JsonElement c) && c.ValueKind is JsonValueKind.True or JsonValueKind.False
                ? c.GetBoolean() : null;
            list.Add(new UncalibratedStrategy(method, weights, kind, error, Field("cell"), minTokens, checkpointing));
        }
        return list;
    }

    private static string ReadResource()
    {
        using Stream stream = typeof(UncalibratedStrategies).Assembly.GetManifestResourceStream(ResourceName)
            ?? throw new InvalidOperationException($"missing embedded resource {ResourceName}");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }
}
