using System.Text;
using System.Text.Json;
using QuantPeft.Memory.CostModel;
using QuantPeft.Memory.Planning;

namespace QuantPeft.Memory.Reports;

/// <summary>
/// The plan as JSON (schema in docs/planner.md): stable snake_case property names, sizes in bytes as integers,
/// candidates in rank order, <c>chosen</c> the index of the recommended one or null.
/// </summary>
public static class PlanJson
{
    /// <summary>Schema version written as <c>schema_version</c>.</summary>
    public const int SchemaVersion = 1;

    /// <summary>Serialises <paramref name="plan"/>, with at most <paramref name="maxCandidates"/> candidates (null: all).</summary>
    public static string Write(TrainingPlan plan, int? maxCandidates = null)
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteNumber("schema_version", SchemaVersion);
            w.WriteString("model", plan.Model);
            w.WriteNumber("parameter_count", plan.Spec.ParameterCount);
            w.WriteString("objective", plan.Objective.ToString().ToLowerInvariant());
            w.WriteStartObject("workload");
            w.WriteNumber("seq", plan.Workload.Seq);
            w.WriteNumber("grad_accum", plan.Workload.GradAccum);
            w.WriteNumber("adapter_dropout", plan.Workload.AdapterDropout);
            if (plan.Workload.RowsPerExample != 1) w.WriteNumber("rows_per_example", plan.Workload.RowsPerExample);
            if (plan.Workload.ReferenceForward) w.WriteBoolean("reference_forward", true);
            if (plan.Workload.PackedRows) w.WriteBoolean("packed_rows", true);
            w.WriteEndObject();
            w.WriteStartObject("budget");
            WriteNullable(w, "vram_bytes", plan.Budget.Vram);
            WriteNullable(w, "ram_bytes", plan.Budget.Ram);
            w.WriteNumber("overhead_bytes", plan.Budget.EffectiveOverhead);
            w.WriteNumber("fragmentation", plan.Budget.EffectiveFragmentation);
            w.WriteString("device_kind", plan.Budget.DeviceKind.ToString().ToLowerInvariant());
            w.WriteEndObject();
            w.WriteNumber("candidate_count", plan.Candidates.Count);
            w.WriteStartArray("candidates");
            foreach (Candidate c in plan.Candidates.Take(maxCandidates ?? int.MaxValue))
                WriteCandidate(w, c);
            w.WriteEndArray();
            if (plan.Chosen is { } chosen) w.WriteNumber("chosen", chosen);
            else w.WriteNull("chosen");
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(stream.ToArray()) + "\n";
    }

    private static void WriteCandidate(Utf8JsonWriter w, Candidate c)
    {
        Strategy s = c.Strategy;
        w.WriteStartObject();
        w.WriteStartObject("strategy");
        w.WriteString("weights", Knob.Name(s.Weights, s.LqLoraBits));
        w.WriteBoolean("double_quant", s.DoubleQuant);
        w.WriteString("method", Knob.Name(s.Method));
        w.WriteNumber("rank", s.Rank);
        if (s.IsAdapterMethod) w.WriteString("targets", s.Targets.ToKnob());
        else w.WriteNull("targets");
        w.WriteString("optimizer", Knob.Name(s.Optimizer));
        w.WriteBoolean("layerwise", s.Layerwise);
        w.WriteBoolean("checkpointing", s.Checkpointing);
        w.WriteNumber("lisa_layers", s.LisaLayers);
        w.WriteNumber("prune", s.Prune);
        w.WriteString("attention", s.Attention.ToString().ToLowerInvariant());
        w.WriteNumber("batch", s.Batch);
        w.WriteBoolean("chunked_loss", s.ChunkedLoss);
        w.WriteString("summary", s.Describe());
        w.WriteEndObject();
        w.WriteBoolean("fits", c.Fits);
        w.WriteNumber("peak_bytes", c.Estimate.PeakBytes);
        w.WriteNumber("host_bytes", c.Estimate.HostBytes);
        w.WriteString("peak_phase", c.Estimate.PeakPhase);
        w.WriteStartObject("breakdown");
        foreach (MemoryComponent m in MemoryComponents.DeviceOrder)
            w.WriteNumber(m.JsonName(), c.Estimate.Device[m]);
        w.WriteEndObject();
        w.WriteStartObject("host_breakdown");
        foreach (var (m, bytes) in c.Estimate.Host)
            w.WriteNumber(m.JsonName(), bytes);
        w.WriteEndObject();
        w.WriteNumber("quality", Math.Round(c.Quality, 3));
        w.WriteNumber("speed_factor", Math.Round(c.SpeedFactor, 4));
        w.WriteStartArray("overflows");
        foreach (Overflow o in c.Overflows)
        {
            w.WriteStartObject();
            w.WriteString("budget", o.Budget);
            w.WriteString("component", o.Component.JsonName());
            w.WriteNumber("over_by_bytes", o.OverBy);
            w.WriteString("message", o.Message);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteEndObject();
    }

    private static void WriteNullable(Utf8JsonWriter w, string name, long? value)
    {
        if (value is { } v) w.WriteNumber(name, v);
        else w.WriteNull(name);
    }
}
