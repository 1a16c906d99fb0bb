namespace QuantPeft.Memory.Planning;

/// <summary>
/// Which strategies a multi-GPU engine reproduces as planned. The engines run Hugging Face modules with PEFT and
/// bitsandbytes under FSDP, so the hand-off is limited to what that stack does the way the plan prices it: full
/// fine-tuning of a bf16 model, or LoRA on a bf16 or NF4 base (FSDP-QLoRA); PyTorch's AdamW; a fused attention
/// kernel; the loss over the whole logits (a Trainer's default); no optimizer-in-backward.
/// </summary>
public static class EngineStrategies
{
    /// <summary>Whether the engines can run <paramref name="s"/> as planned.</summary>
    public static bool Reproducible(Strategy s) => Mismatch(s) is null;

    /// <summary>Why the engines cannot run a strategy with the fixed knobs of <paramref name="c"/>, naming the flag; null when they can.</summary>
    public static string? Reject(Constraints c)
    {
        if (c.Method is { } m && m is not (TrainingMethod.Full or TrainingMethod.Lora))
            return $"--method {Knob.Name(m)}: the multi-GPU hand-off writes full or lora (QLoRA with --weights nf4)";
        if (c.Weights is { } w && w is not (WeightFormat.Bf16 or WeightFormat.Nf4))
            return $"--weights {Knob.Name(w, c.LqLoraBits ?? 0)}: FSDP-QLoRA shards bf16 or nf4 bases only";
        if (c.Optimizer is { } o && o != OptimizerKind.AdamW)
            return $"--optimizer {Knob.Name(o)}: the multi-GPU hand-off writes PyTorch's AdamW (adamw), whose states FSDP shards";
        if (c.Layerwise == true)
            return "--layerwise on: the engines step the optimizer after backward";
        if (c.Attention == AttentionKind.Eager)
            return "--attention eager: the hand-off writes a fused attention kernel";
        if (c.ChunkedLoss == true)
            return "--chunked-loss on: the engines' Trainer computes the loss over the whole logits; use --chunked-loss off";
        if (c.LisaLayers is not null) return "--lisa-layers: the multi-GPU hand-off writes full or lora";
        if (c.Prune is not null) return "--prune: the multi-GPU hand-off writes full or lora";
        return null;
    }

    private static string? Mismatch(Strategy s) =>
        s.Method is not (TrainingMethod.Full or TrainingMethod.Lora) ? "method"
        : s.Weights is not (WeightFormat.Bf16 or WeightFormat.Nf4) ? "weights"
        : s.Optimizer != OptimizerKind.AdamW ? "optimizer"
        : s.Layerwise ? "layerwise"
        : s.Attention != AttentionKind.Fused ? "attention"
        : s.ChunkedLoss ? "loss"
        : null;
}
