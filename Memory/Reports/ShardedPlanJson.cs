using System.Text.Json;
using QuantPeft.Memory.CostModel;
using QuantPeft.Memory.Planning;

namespace QuantPeft.Memory.Reports;

/// <summary>
/// A sharded plan as JSON (docs/planner.md, "Hand-off to a multi-GPU engine"): the same conventions as
/// <see cref="PlanJson"/> (snake_case, bytes as integers, candidates in rank order), with <c>"sharding": "fsdp"</c>,
/// the GPU count, and per candidate the offload switch and the per-GPU breakdown.
/// </summary>
public static class ShardedPlanJson
{
    /// <summary>Serialises <paramref name="plan"/>, with at most <paramref name="maxCandidates"/> candidates (null: all).</summary>
    public static string Write(ShardedPlan plan, int? maxCandidates = null) => PlanJsonParts.Document(w =>
    {
        w.WriteStartObject();
        w.WriteNumber("schema_version", PlanJson.SchemaVersion);
        w.WriteString("sharding", "fsdp");
        w.WriteString("model", plan.Model);
        w.WriteNumber("parameter_count", plan.Spec.ParameterCount);
        w.WriteNumber("gpus", plan.Gpus);
        w.WriteString("objective", plan.Objective.ToString().ToLowerInvariant());
        PlanJsonParts.StartWorkload(w, plan.Workload);
        w.WriteEndObject();
        PlanJsonParts.StartBudget(w, plan.Budget, "vram_bytes_per_gpu");
        w.WriteEndObject();
        PlanJsonParts.Candidates(w, plan.Candidates, maxCandidates, plan.ChosenCandidate is not null, WriteCandidate);
        w.WriteEndObject();
    });

    private static void WriteCandidate(Utf8JsonWriter w, ShardedCandidate c)
    {
        w.WriteStartObject();
        Strategy s = c.Strategy;
        PlanJsonParts.StartStrategy(w, s);
        w.WriteBoolean("checkpointing", s.Checkpointing);
        w.WriteNumber("batch", s.Batch);
        w.WriteBoolean("offload_params", c.Layout.OffloadParams);
        w.WriteString("summary", c.Describe());
        w.WriteEndObject();
        w.WriteBoolean("fits", c.Fits);
        w.WriteNumber("peak_bytes_per_gpu", c.Estimate.PeakBytes);
        w.WriteNumber("allocated_bytes_per_gpu", c.Estimate.AllocatedBytes);
        w.WriteNumber("host_bytes", c.Estimate.HostBytes);
        w.WriteString("peak_phase", c.Estimate.PeakPhase);
        PlanJsonParts.Breakdown(w, "breakdown", ShardedComponents.DeviceOrder.Select(m => (m.JsonName(), c.Estimate.Device[m])));
        PlanJsonParts.Scores(w, c.Quality, c.SpeedFactor);
        w.WriteStartArray("overflows");
        foreach (string o in c.Overflows) w.WriteStringValue(o);
        w.WriteEndArray();
        w.WriteEndObject();
    }
}
