using QuantPeft.Memory.Planning.Methods;

namespace QuantPeft.Memory.Planning;

/// <summary>
/// One fully resolved combination of every memory-relevant choice: what the planner prices and what the
/// trainer will execute. Fields that do not apply to the method hold their neutral value (rank 0 for
/// full-parameter methods, prune 0 outside LoRAM, LISA layers 0 outside LISA).
/// </summary>
public sealed record Strategy
{
    /// <summary>Storage format of the base weights.</summary>
    public required WeightFormat Weights { get; init; }

    /// <summary>Average bits per quantized parameter for <see cref="WeightFormat.LqLora"/>; 0 otherwise.</summary>
    public double LqLoraBits { get; init; }

    /// <summary>Double quantization of the 4-bit absmax (NF4/FP4 only).</summary>
    public bool DoubleQuant { get; init; }

    /// <summary>What is trained.</summary>
    public required TrainingMethod Method { get; init; }

    /// <summary>Adapter rank, or the GaLore projection rank; 0 where it does not apply.</summary>
    public int Rank { get; init; }

    /// <summary>Projections carrying adapters (adapter methods only).</summary>
    public TargetModules Targets { get; init; }

    /// <summary>The optimizer.</summary>
    public required OptimizerKind Optimizer { get; init; }

    /// <summary>Optimizer-in-backward: each parameter is updated (and its gradient freed) as soon as its gradient is ready.</summary>
    public bool Layerwise { get; init; }

    /// <summary>Activation checkpointing of every decoder layer.</summary>
    public bool Checkpointing { get; init; }

    /// <summary>LISA: number of decoder layers trained at a time (γ).</summary>
    public int LisaLayers { get; init; }

    /// <summary>LoRAM structured pruning ratio of the middle layers (0 = none).</summary>
    public double Prune { get; init; }

    /// <summary>Attention implementation.</summary>
    public AttentionKind Attention { get; init; }

    /// <summary>Micro-batch size (sequences per forward).</summary>
    public required int Batch { get; init; }

    /// <summary>Whether the loss is computed in chunks (no full-vocabulary f32 copies).</summary>
    public bool ChunkedLoss { get; init; }

    /// <summary>Whether the method trains adapters on a frozen base.</summary>
    public bool IsAdapterMethod => MethodRegistry.Of(Method).IsAdapter;

    /// <summary>Whether the base weights are quantized.</summary>
    public bool IsQuantized => Weights != WeightFormat.Bf16;

    /// <summary>Whether the optimizer keeps its large state buffers in paged memory.</summary>
    public bool IsPaged => Optimizer is OptimizerKind.PagedAdamW or OptimizerKind.PagedAdamW8bit;

    /// <summary>A one-line description in command-line spelling, e.g. <c>lora r16 all-linear | nf4+dq | adamw-8bit | ckpt</c>.</summary>
    public string Describe()
    {
        var parts = new List<string>();
        string method = Knob.Name(Method);
        if (IsAdapterMethod) method += $" r{Rank} {Targets.ToKnob()}";
        if (Method is TrainingMethod.Galore or TrainingMethod.NaturalGalore) method += $" r{Rank}";
        if (Method == TrainingMethod.Lisa) method += $" γ={LisaLayers}";
        if (Method == TrainingMethod.Loram) method += $" prune {Prune:0.##}";
        parts.Add(method);
        parts.Add(Knob.Name(Weights, LqLoraBits) + (DoubleQuant ? "+dq" : ""));
        parts.Add(Knob.Name(Optimizer) + (Layerwise ? " layerwise" : ""));
        var flags = new List<string> { $"b{Batch}" };
        if (Checkpointing) flags.Add("ckpt");
        if (Attention == AttentionKind.Eager) flags.Add("eager");
        parts.Add(string.Join(" ", flags));
        return string.Join(" | ", parts);
    }
}
