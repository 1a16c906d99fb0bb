namespace QuantPeft.Memory.Planning.Methods;

/// <summary>
/// Every training method's <see cref="MethodDescriptor"/>, registered once. The method parser (<see cref="Knob"/>),
/// the planner's search space and ranking, the cost model and the method defaults read it instead of switching on
/// the method. Order is the order of <see cref="TrainingMethod"/> and of the <c>--method</c> help.
/// </summary>
public static class MethodRegistry
{
    /// <summary>The learning rate of LoRA and of every method that does not set its own.</summary>
    public const double BaseLearningRate = 3e-3;

    // VeRA and OSoRA train only vectors that scale frozen directions, so a step at LoRA's rate moves the layer far
    // less; VeRA's paper trains its vectors at rates ten and more times LoRA's. The 40-step demo run's loss falls
    // below 90 % of its first value at this rate (docs/strategies.md).
    private const double VectorLearningRate = 3e-2;

    // RandLoRA trains scalings of fixed random directions, as VeRA does; the 40-step demo run's loss falls below 90 % of
    // its first value at this rate (docs/strategies.md).
    private const double RandLoraLearningRate = VectorLearningRate;

    // DoRA: LoRA's pair plus a trained magnitude per output row; its forward also keeps the d_out product
    // (base + s·BA x) that the magnitude's gradient needs (DoraLinear.forward).
    private static readonly AdapterCost DoraCost = new(
        t => [.. AdapterCost.LowRank.Trainable(t), t.Out],
        _ => 0,
        (t, f32) => t.SharesInput ? (f32 ? 4 : 2) * t.Out : f32 ? 4 * (t.In + t.Rank) + 4 * t.Out : 2 * t.Rank + 2 * t.Out,
        RowNormWorkspace: true);

    // OSoRA: trained S_r (r) and output vector (d_out) over frozen U_r [d_out, r], V_rᵀ [r, d_in]. It keeps the
    // r-vector S multiplies and the d_out vector the output scale multiplies; the frozen matmuls keep nothing.
    private static readonly AdapterCost OsoraCost = new(
        t => t.SharesInput ? [t.Out] : [t.ClampedRank, t.Out],
        t => t.SharesInput ? t.ClampedRank * t.Out : t.ClampedRank * (t.In + t.Out),
        VectorSavedBytes);

    // VeRA: trained λ_d (r) and λ_b (d_out) per target over one frozen pair A [r, max d_in], B [max d_out, r]
    // shared by every target; the rank is not clamped, the shared matrices are that wide.
    private static readonly AdapterCost VeraCost = new(
        t => t.SharesInput ? [t.Out] : [t.Rank, t.Out],
        _ => 0,
        VectorSavedBytes,
        (maxIn, maxOut, r) => (long)r * maxIn + maxOut * r);

    // Bone: one trained block [r, d_out] per target; its forward keeps only the r-vector Σ_j x_j (the sum of the input's
    // r-wide column blocks, cast first when the adapter is f32) for the block's gradient.
    private static readonly AdapterCost BoneCost = new(
        t => [(long)t.Rank * t.Out],
        _ => 0,
        (t, f32) => t.SharesInput ? 0 : (f32 ? 4 : 2) * t.Rank);

    // RandLoRA: per target λ [r, n] and γ [n, min] trained, n = ⌈min(d_in, d_out) / r⌉; the bases A [r, 1, min] and
    // B [max, n, r] of the widest target (min and max of its d_in and d_out, as PEFT sizes them) are shared. Its forward
    // keeps the input when d_in ≤ d_out (a cast f32 copy for an f32 adapter, else nothing new), otherwise the n·r-vector Bᵀx.
    private static readonly AdapterCost RandLoraCost = new(
        t => t.SharesInput ? [] : [t.Rank * RandLoraBaseCount(t.In, t.Out, t.Rank), RandLoraBaseCount(t.In, t.Out, t.Rank) * Math.Min(t.In, t.Out)],
        _ => 0,
        (t, f32) => t.SharesInput ? 0 : t.In <= t.Out ? (f32 ? 4 * t.In : 0) : (f32 ? 4 : 2) * t.Rank * RandLoraBaseCount(t.In, t.Out, t.Rank),
        (maxIn, maxOut, r) => r * Math.Min(maxIn, maxOut) + Math.Max(maxIn, maxOut) * r * RandLoraBaseCount(maxIn, maxOut, r));

    private static long RandLoraBaseCount(long dIn, long dOut, int rank) => (Math.Min(dIn, dOut) + rank - 1) / rank;
    // LoRA-GA: LoRA's pair plus the frozen A₀ [r, in], B₀ [out, r] of its offset −s·B₀A₀; the forward works in f32 and
    // keeps the f32 input, A·x and A₀·x (for the offset's gradient with respect to x).
    private static readonly AdapterCost LoraGaCost = new(
        AdapterCost.LowRank.Trainable,
        t => t.SharesInput ? t.Out * t.ClampedRank : t.ClampedRank * (t.In + t.Out),
        (t, _) => t.SharesInput ? 0 : 4 * (t.In + 2 * t.Rank));

    private static long VectorSavedBytes(AdapterTarget t, bool f32) =>
        t.SharesInput ? (f32 ? 4 : 2) * t.Out : f32 ? 4 * t.Rank + 4 * t.Out : 4 * t.Rank + 2 * t.Out;

    /// <summary>Every method, in <see cref="TrainingMethod"/> order.</summary>
    public static IReadOnlyList<MethodDescriptor> All { get; } =
    [
        new() { Method = TrainingMethod.Full, Name = "full", Summary = "every parameter", QualityPrior = 100, SpeedFactor = 1.0, SearchRanks = [0], ImpliedWeights = WeightFormat.Bf16 },
        new() { Method = TrainingMethod.Lora, Name = "lora", Summary = "LoRA", Adapter = AdapterCost.LowRank, QualityPrior = 91, SpeedFactor = 0.7 },
        new() { Method = TrainingMethod.Pissa, Name = "pissa", Summary = "PiSSA (LoRA from the top-r SVD)", Adapter = AdapterCost.LowRank, QualityPrior = 92, SpeedFactor = 0.7 },
        new()
        {
            Method = TrainingMethod.Osora, Name = "osora", Summary = "OSoRA (trained singular values and output vector)", Adapter = OsoraCost,
            QualityPrior = 88, SpeedFactor = 0.72, DefaultLearningRate = VectorLearningRate,
        },
        new()
        {
            Method = TrainingMethod.Vera, Name = "vera", Summary = "VeRA (shared random matrices, trained vectors)", Adapter = VeraCost,
            QualityPrior = 84, SpeedFactor = 0.72, RankRaisesQuality = false, SearchRanks = [256], BenchRank = 256,   // VeRA relies on large shared random matrices
            DefaultLearningRate = VectorLearningRate,
        },
        new() { Method = TrainingMethod.Dora, Name = "dora", Summary = "DoRA (LoRA plus a trained magnitude)", Adapter = DoraCost, QualityPrior = 93, SpeedFactor = 0.85 },
        new()
        {
            // LISA's paper samples γ = 2 middle layers per period.
            Method = TrainingMethod.Lisa, Name = "lisa", Summary = "LISA layer sampling", QualityPrior = 95, SpeedFactor = 0.75, SearchRanks = [0],
            ImpliedWeights = WeightFormat.Bf16, ImpliedLisaLayers = 2,
        },
        new()
        {
            Method = TrainingMethod.Galore, Name = "galore", Summary = "GaLore", QualityPrior = 96, SpeedFactor = 1.05,
            SearchRanks = SearchSpace.GaloreRanks, BenchRank = 128, ImpliedOptimizer = OptimizerKind.Galore, ImpliedWeights = WeightFormat.Bf16,
        },
        new()
        {
            Method = TrainingMethod.NaturalGalore, Name = "natural-galore", Summary = "Natural GaLore", QualityPrior = 97, SpeedFactor = 1.15,
            SearchRanks = SearchSpace.GaloreRanks, BenchRank = 128, ImpliedOptimizer = OptimizerKind.NaturalGalore, ImpliedWeights = WeightFormat.Bf16,
        },
        new()
        {
            // Without --prune, the least pruning the planner searches.
            Method = TrainingMethod.Loram, Name = "loram", Summary = "LoRAM (LoRA on a pruned base, recovered)", Adapter = AdapterCost.LowRank,
            QualityPrior = 80, SpeedFactor = 0.7, ImpliedPrune = SearchSpace.PruneRatios[0],
        },
        new() { Method = TrainingMethod.Bone, Name = "bone", Summary = "Bone (one trained block added to every column block)", Adapter = BoneCost, QualityPrior = 90, SpeedFactor = 0.7 },
        // DyLoRA: LoRA's pair at rank r (the truncated forward keeps A↓b·x, at most r values); the frozen mode's detached copies are weight-sized.
        new() { Method = TrainingMethod.Dylora, Name = "dylora", Summary = "DyLoRA (LoRA trained at a rank sampled each step; truncates to any k ≤ r)", Adapter = AdapterCost.LowRank, QualityPrior = 89, SpeedFactor = 0.7 },
        // NLoRA: A [r, d_in], M [r, r], B [d_out, r] trained; the forward keeps the f32 input copy (an f32 adapter), A·x and M·A·x.
        new()
        {
            Method = TrainingMethod.Nlora, Name = "nlora", Summary = "NLoRA (B·M·A from the Nyström approximation of W)", QualityPrior = 92, SpeedFactor = 0.7,
            Adapter = new(
                t => t.SharesInput ? [t.Out * t.ClampedRank] : [t.ClampedRank * t.In, t.ClampedRank * t.ClampedRank, t.Out * t.ClampedRank],
                _ => 0,
                (t, f32) => t.SharesInput ? 0 : f32 ? 4 * (t.In + 2L * t.Rank) : 2 * 2L * t.Rank),
        },
        new()
        {
            Method = TrainingMethod.RandLora, Name = "randlora", Summary = "RandLoRA (full-rank sum of shared random bases, trained scalings)", Adapter = RandLoraCost,
            QualityPrior = 90, SpeedFactor = 0.9, RankRaisesQuality = false, SearchRanks = [32], BenchRank = 32,   // a smaller r trains more
            DefaultLearningRate = RandLoraLearningRate,
        },
        // EVA and LoRA-GA: just below PiSSA, whose price they share or exceed, so a search keeps choosing PiSSA where
        // both fit (theirs needs a pass over training batches before step 1; PiSSA's SVD runs as the weights load).
        new() { Method = TrainingMethod.Eva, Name = "eva", Summary = "EVA (LoRA A from the inputs' top singular vectors, ranks by explained variance)", Adapter = AdapterCost.LowRank, QualityPrior = 91.9, SpeedFactor = 0.7 },
        new() { Method = TrainingMethod.LoraGa, Name = "lora-ga", Summary = "LoRA-GA (LoRA from the SVD of the first batches' gradient)", Adapter = LoraGaCost, QualityPrior = 91.9, SpeedFactor = 0.7 },
    ];

    /// <summary>The descriptor of <paramref name="method"/>.</summary>
    public static MethodDescriptor Of(TrainingMethod method) => All[(int)method].Method == method
        ? All[(int)method]
        : All.First(d => d.Method == method);

    /// <summary>The descriptor named <paramref name="name"/> (case-insensitive), or null.</summary>
    public static MethodDescriptor? Find(string name) =>
        All.FirstOrDefault(d => string.Equals(d.Name, name.Trim(), StringComparison.OrdinalIgnoreCase));
}
