namespace QuantPeft.Memory.Planning.Methods;

/// <summary>
/// Everything the planner and the command line know about one training method, in one place: its name, how it is
/// priced and ranked, and the flags it implies. The trainer's half (the layer it builds, its initialisation, its file
/// format) is the method's <c>AdapterDescriptor</c> in QuantPeft.Trainers, which this project cannot see.
/// Registered once in <see cref="MethodRegistry"/>.
/// </summary>
public sealed record MethodDescriptor
{
    /// <summary>The method.</summary>
    public required TrainingMethod Method { get; init; }

    /// <summary>Command-line name (<c>--method</c>, knob strings, plan.json).</summary>
    public required string Name { get; init; }

    /// <summary>One phrase for the <c>--method</c> help.</summary>
    public required string Summary { get; init; }

    /// <summary>The adapter's cost formulas; null for the methods that train the base weights themselves.</summary>
    public AdapterCost? Adapter { get; init; }

    /// <summary>Whether the method trains adapters on a frozen base.</summary>
    public bool IsAdapter => Adapter is not null;

    /// <summary>Expected fine-tuning quality in points before the weight, rank and target adjustments (docs/planner.md, "Ranking").</summary>
    public required double QualityPrior { get; init; }

    /// <summary>Expected time per token relative to full bf16 training, before the strategy's other factors.</summary>
    public required double SpeedFactor { get; init; }

    /// <summary>Whether a higher rank (and more targets) raises the expected quality; VeRA's rank only sizes its shared random matrices.</summary>
    public bool RankRaisesQuality { get; init; } = true;

    /// <summary>The ranks the planner tries when <c>--rank</c> is open (<c>[0]</c>: the method has no rank).</summary>
    public int[] SearchRanks { get; init; } = SearchSpace.AdapterRanks;

    /// <summary>The rank a <c>bench-memory</c> knob string without <c>rank=</c> uses.</summary>
    public int BenchRank { get; init; } = 8;

    /// <summary>The optimizer the method runs with when <c>--optimizer</c> is absent.</summary>
    public OptimizerKind ImpliedOptimizer { get; init; } = OptimizerKind.AdamW;

    /// <summary>
    /// The base format the method trains on when <c>--weights</c> is absent: NF4 for adapters (QLoRA), bf16 for the
    /// methods that train the base weights themselves, which cannot be 4-bit.
    /// </summary>
    public WeightFormat ImpliedWeights { get; init; } = WeightFormat.Nf4;

    /// <summary>LISA: the decoder layers trained at a time when <c>--lisa-layers</c> is absent (0: the method samples no layers).</summary>
    public int ImpliedLisaLayers { get; init; }

    /// <summary>LoRAM: the structured pruning ratio when <c>--prune</c> is absent (0: the method prunes nothing).</summary>
    public double ImpliedPrune { get; init; }

    /// <summary>The peak learning rate the method runs with when <c>--lr</c> is absent.</summary>
    public double DefaultLearningRate { get; init; } = MethodRegistry.BaseLearningRate;
}
