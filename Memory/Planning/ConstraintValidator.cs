using QuantPeft.Formats.HuggingFace;
using QuantPeft.Memory.Planning.Methods;

namespace QuantPeft.Memory.Planning;

/// <summary>
/// Rejects contradictory fixed knobs before any search, with messages that name the flags involved.
/// Knobs left open are narrowed instead (e.g. <c>--prune</c> alone restricts the search to LoRAM).
/// </summary>
public static class ConstraintValidator
{
    /// <summary>Throws <see cref="PlanningException"/> when the fixed knobs, workload or budget contradict each other.</summary>
    public static void Validate(ModelSpec spec, Workload w, Budget b, Constraints c)
    {
        TrainingMethod? m = c.Method;
        bool fullParam = m is { } known && !MethodRegistry.Of(known).IsAdapter;
        bool adapter = m is not null && !fullParam;
        string method = m is null ? "" : Knob.Name(m.Value);

        if (fullParam && c.Weights is { } wf && wf != WeightFormat.Bf16)
            throw new PlanningException($"--method {method} trains the base weights and needs --weights bf16; found --weights {Knob.Name(wf, c.LqLoraBits ?? 0)}");
        if (c.Weights == WeightFormat.LqLora && m is not null && m != TrainingMethod.Lora)
            throw new PlanningException($"--weights lq-lora trains its low-rank factors as LoRA and needs --method lora; found --method {method}");
        if (c.DoubleQuant == true && c.Weights is { } dq && dq is not (WeightFormat.Nf4 or WeightFormat.Fp4))
            throw new PlanningException($"--double-quant on applies to --weights nf4 or fp4; found --weights {Knob.Name(dq, c.LqLoraBits ?? 0)}");
        if (c.LisaLayers is not null && m is not null && m != TrainingMethod.Lisa)
            throw new PlanningException($"--lisa-layers applies only to --method lisa; found --method {method}");
        if (c.LisaLayers is { } g && (g < 1 || g > spec.NumLayers))
            throw new PlanningException($"--lisa-layers: expected 1..{spec.NumLayers} (the model's layers), found {g}");
        if (c.Prune is not null && m is not null && m != TrainingMethod.Loram)
            throw new PlanningException($"--prune applies only to --method loram; found --method {method}");
        if (c.Rank is not null && m is TrainingMethod.Full or TrainingMethod.Lisa)
            throw new PlanningException($"--rank does not apply to --method {method} (no adapter, no projection)");
        if (c.Rank is { } r && r < 1)
            throw new PlanningException($"--rank: expected a positive integer, found {r}");
        if (c.Targets is not null && m is not null && !adapter)
            throw new PlanningException($"--targets applies only to adapter methods (lora, pissa, osora, vera, dora, loram); found --method {method}");
        if (c.Layerwise == true && adapter)
            throw new PlanningException($"--layerwise on applies to full-parameter methods (full, lisa, galore, natural-galore); found --method {method}");
        if (c.Layerwise == true && w.GradAccum > 1)
            throw new PlanningException($"--layerwise on updates during backward and cannot accumulate gradients; found --grad-accum {w.GradAccum}");
        ValidateOptimizer(c, m, method);
        if (c.Method is null && c.Weights is { } qw && qw != WeightFormat.Bf16 && c.Optimizer is OptimizerKind.Galore or OptimizerKind.Galore8bit or OptimizerKind.NaturalGalore)
            throw new PlanningException($"--optimizer {Knob.Name(c.Optimizer!.Value)} trains the base weights and needs --weights bf16; found --weights {Knob.Name(qw, c.LqLoraBits ?? 0)}");

        if (w.Seq < 1) throw new PlanningException($"--seq: expected a positive integer, found {w.Seq}");
        if (w.GradAccum < 1) throw new PlanningException($"--grad-accum: expected a positive integer, found {w.GradAccum}");
        if (w.Seq > spec.MaxPositionEmbeddings)
            throw new PlanningException($"--seq {w.Seq} exceeds the model's max_position_embeddings {spec.MaxPositionEmbeddings}");
        if (c.Batch is { } bs && bs < 1) throw new PlanningException($"--batch: expected a positive integer, found {bs}");
        if (c.Prune is { } p && (p <= 0 || p >= 1)) throw new PlanningException($"--prune: expected a ratio between 0 and 1, found {p}");

        if (b.DeviceKind == DeviceKind.Cpu && b.Vram is not null)
            throw new PlanningException("--vram applies to --device-kind cuda; on --device-kind cpu the device memory is --ram");
        if (b.DeviceLimit is { } limit && limit <= b.EffectiveOverhead)
            throw new PlanningException($"{(b.DeviceKind == DeviceKind.Cpu ? "--ram" : "--vram")} {Planning.ByteSize.Format(limit)} is not above the runtime overhead {Planning.ByteSize.Format(b.EffectiveOverhead)} (--overhead)");
    }

    private static void ValidateOptimizer(Constraints c, TrainingMethod? m, string method)
    {
        if (c.Optimizer is not { } o) return;
        string opt = Knob.Name(o);
        bool galoreOpt = o is OptimizerKind.Galore or OptimizerKind.Galore8bit;
        if (galoreOpt && m is not null && m != TrainingMethod.Galore)
            throw new PlanningException($"--optimizer {opt} needs --method galore; found --method {method}");
        if (o == OptimizerKind.NaturalGalore && m is not null && m != TrainingMethod.NaturalGalore)
            throw new PlanningException($"--optimizer {opt} needs --method natural-galore; found --method {method}");
        if (m == TrainingMethod.Galore && !galoreOpt)
            throw new PlanningException($"--method galore needs --optimizer galore or galore-8bit; found --optimizer {opt}");
        if (m == TrainingMethod.NaturalGalore && o != OptimizerKind.NaturalGalore)
            throw new PlanningException($"--method natural-galore needs --optimizer natural-galore; found --optimizer {opt}");
    }
}
