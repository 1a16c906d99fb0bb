using System.Text;
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
    public static string Write(ShardedPlan plan, int? maxCandidates = null)
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteNumber("schema_version", PlanJson.SchemaVersion);
            w.WriteString("sharding", "fsdp");
            w.WriteString("model", plan.Model);
            w.WriteNumber("parameter_count", plan.Spec.ParameterCount);
            w.WriteNumber("gpus", plan.Gpus);
            w.WriteString("objective", plan.Objective.ToString().ToLowerInvariant());
            w.WriteStartObject("workload");
            w.WriteNumber("seq", plan.Workload.Seq);
            w.WriteNumber("grad_accum", plan.Workload.GradAccum);
            w.WriteNumber("adapter_dropout", plan.Workload.AdapterDropout);
            w.WriteEndObject();
            w.WriteStartObject("budget");
            if (plan.Budget.Vram is { } v) w.WriteNumber("vram_bytes_per_gpu", v); else w.WriteNull("vram_bytes_per_gpu");
            if (plan.Budget.Ram is { } r) w.WriteNumber("ram_bytes", r); else w.WriteNull("ram_bytes");
            w.WriteNumber("overhead_bytes", plan.Budget.EffectiveOverhead);
            w.WriteNumber("fragmentation", plan.Budget.EffectiveFragmentation);
            w.WriteEndObject();
            w.WriteNumber("candidate_count", plan.Candidates.Count);
            w.WriteStartArray("candidates");
            foreach (ShardedCandidate c in plan.Candidates.Take(maxCandidates ?? int.MaxValue)) WriteCandidate(w, c);
            w.WriteEndArray();
            if (plan.ChosenCandidate is not null) w.WriteNumber("chosen", 0); else w.WriteNull("chosen");
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(stream.ToArray()) + "\n";
    }

    private static void WriteCandidate(Utf8JsonWriter w, ShardedCandidate c)
    {
        Strategy s = c.Strategy;
        w.WriteStartObject();
        w.WriteStartObject("strategy");
        w.WriteString("weights", Knob.Name(s.Weights));
        w.WriteBoolean("double_quant", s.DoubleQuant);
        w.WriteString("method", Knob.Name(s.Method));
        w.WriteNumber("rank", s.Rank);
        if (s.IsAdapterMethod) w.WriteString("targets", s.Targets.ToKnob()); else w.WriteNull("targets");
        w.WriteString("optimizer", Knob.Name(s.Optimizer));
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
        w.WriteStartObject("breakdown");
        foreach (ShardedComponent m in ShardedComponents.DeviceOrder) w.WriteNumber(m.JsonName(), c.Estimate.Device[m]);
        w.WriteEndObject();
        w.WriteNumber("quality", Math.Round(c.Quality, 3));
        w.WriteNumber("speed_factor", Math.Round(c.SpeedFactor, 4));
        w.WriteStartArray("overflows");
        foreach (string o in c.Overflows) w.WriteStringValue(o);
        w.WriteEndArray();
        w.WriteEndObject();
    }
}
