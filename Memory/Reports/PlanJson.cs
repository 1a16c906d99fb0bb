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
    public static string Write(TrainingPlan plan, int? maxCandidates = null) => PlanJsonParts.Document(w =>
    {
        w.WriteStartObject();
        w.WriteNumber("schema_version", SchemaVersion);
        w.WriteString("model", plan.Model);
        w.WriteNumber("parameter_count", plan.Spec.ParameterCount);
        w.WriteString("objective", plan.Objective.ToString().ToLowerInvariant());
        PlanJsonParts.StartWorkload(w, plan.Workload);
        if (plan.Workload.RowsPerExample != 1) w.WriteNumber("rows_per_example", plan.Workload.RowsPerExample);
        if (plan.Workload.ReferenceForward) w.WriteBoolean("reference_forward", true);
        if (plan.Workload.PackedRows) w.WriteBoolean("packed_rows", true);
        w.WriteEndObject();
        PlanJsonParts.StartBudget(w, plan.Budget, "vram_bytes");
        w.WriteString("device_kind", plan.Budget.DeviceKind.ToString().ToLowerInvariant());
        w.WriteEndObject();
        PlanJsonParts.Candidates(w, plan.Candidates, maxCandidates, plan.Chosen is not null, WriteCandidate);
        w.WriteEndObject();
    });

    private static void WriteCandidate(Utf8JsonWriter w, Candidate c)
    {
        w.WriteStartObject();
        Strategy s = c.Strategy;
        PlanJsonParts.StartStrategy(w, s);
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
        PlanJsonParts.Breakdown(w, "breakdown", MemoryComponents.DeviceOrder.Select(m => (m.JsonName(), c.Estimate.Device[m])));
        PlanJsonParts.Breakdown(w, "host_breakdown", c.Estimate.Host.Select(h => (h.Key.JsonName(), h.Value)));
        PlanJsonParts.Scores(w, c.Quality, c.SpeedFactor);
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
}
