namespace QuantPeft.Memory.Planning;

/// <summary>
/// The caller's choices: every knob that is set is fixed, every null knob is searched. With every knob
/// set, the search has exactly one candidate.
/// </summary>
public sealed record Constraints
{
    /// <summary><c>--weights</c>.</summary>
    public WeightFormat? Weights { get; init; }
    /// <summary>Bit width of <c>--weights lq-lora:BITS</c>.</summary>
    public double? LqLoraBits { get; init; }
    /// <summary><c>--double-quant</c>.</summary>
    public bool? DoubleQuant { get; init; }
    /// <summary><c>--method</c>.</summary>
    public TrainingMethod? Method { get; init; }
    /// <summary><c>--rank</c>.</summary>
    public int? Rank { get; init; }
    /// <summary><c>--targets</c>.</summary>
    public TargetModules? Targets { get; init; }
    /// <summary><c>--optimizer</c>.</summary>
    public OptimizerKind? Optimizer { get; init; }
    /// <summary><c>--layerwise</c>.</summary>
    public bool? Layerwise { get; init; }
    /// <summary><c>--checkpointing</c>.</summary>
    public bool? Checkpointing { get; init; }
    /// <summary><c>--lisa-layers</c>.</summary>
    public int? LisaLayers { get; init; }
    /// <summary><c>--prune</c>.</summary>
    public double? Prune { get; init; }
    /// <summary><c>--attention</c>.</summary>
    public AttentionKind? Attention { get; init; }
    /// <summary><c>--batch</c> (micro-batch).</summary>
    public int? Batch { get; init; }
    /// <summary><c>--chunked-loss</c>.</summary>
    public bool? ChunkedLoss { get; init; }

    /// <summary>Every knob fixed from a resolved strategy (used to re-price one known configuration).</summary>
    public static Constraints Fixed(Strategy s) => new()
    {
        Weights = s.Weights, LqLoraBits = s.Weights == WeightFormat.LqLora ? s.LqLoraBits : null,
        DoubleQuant = s.DoubleQuant, Method = s.Method,
        Rank = s.Rank > 0 ? s.Rank : null, Targets = s.IsAdapterMethod ? s.Targets : null,
        Optimizer = s.Optimizer, Layerwise = s.Layerwise, Checkpointing = s.Checkpointing,
        LisaLayers = s.Method == TrainingMethod.Lisa ? s.LisaLayers : null,
        Prune = s.Method == TrainingMethod.Loram ? s.Prune : null,
        Attention = s.Attention, Batch = s.Batch, ChunkedLoss = s.ChunkedLoss,
    };
}
