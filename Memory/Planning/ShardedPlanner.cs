using QuantPeft.Formats.HuggingFace;
using QuantPeft.Memory.CostModel;

namespace QuantPeft.Memory.Planning;

/// <summary>
/// Plans a run for a multi-GPU engine under FSDP full sharding: the same search as <see cref="Planner"/> narrowed to
/// what the engines reproduce (<see cref="EngineStrategies"/>), each strategy priced per GPU with and without parameter
/// offload (<see cref="FsdpShardingCost"/>) and checked against the per-GPU <c>--vram</c> and the host <c>--ram</c>.
/// </summary>
public static class ShardedPlanner
{
    /// <summary>
    /// Time per token of a parameter-offloaded run relative to the same run without offload: an ordinal heuristic (the
    /// parameters cross PCIe twice a step and the optimizer steps on the CPU), used only to prefer no offload when both fit.
    /// </summary>
    public const double OffloadSlowdown = 1.5;

    /// <summary>Plans <paramref name="spec"/> over <paramref name="gpus"/> GPUs.</summary>
    /// <param name="spec">The architecture.</param>
    /// <param name="gpus">Ranks to shard over (2 or more).</param>
    /// <param name="workload">Sequence length and accumulation; the micro-batch is each rank's.</param>
    /// <param name="budget">The per-GPU <c>--vram</c>, the host <c>--ram</c>, overhead and fragmentation of one rank.</param>
    /// <param name="constraints">Fixed knobs; null ones are searched among what the engines reproduce.</param>
    /// <param name="offload">Parameter offload fixed on or off; null searches both.</param>
    /// <param name="objective">Ranking objective.</param>
    /// <param name="modelName">Name shown in reports.</param>
    /// <param name="precision">The engine's master dtypes and prefetching (default: <see cref="FsdpPrecision.HuggingFace"/>).</param>
    /// <param name="settings">What the engine's modules keep for backward (default: <see cref="EngineSettings"/>).</param>
    /// <exception cref="PlanningException">Contradictory knobs, a knob the engines cannot reproduce, or a CPU device.</exception>
    public static ShardedPlan Plan(ModelSpec spec, int gpus, Workload workload, Budget budget, Constraints constraints,
        bool? offload = null, Objective objective = Objective.Quality, string modelName = "model",
        FsdpPrecision? precision = null, CostSettings? settings = null)
    {
        if (gpus < 2) throw new PlanningException($"--gpus: a sharded plan needs 2 or more GPUs, found {gpus}");
        if (budget.DeviceKind != DeviceKind.Cuda) throw new PlanningException("--device-kind cpu: --gpus plans shard over CUDA GPUs");
        precision ??= FsdpPrecision.HuggingFace;
        settings ??= EngineSettings;
        if (EngineStrategies.Reject(constraints) is { } why) throw new PlanningException(why);
        // The engines compute the whole logits unless told otherwise, so an open loss knob means unchunked.
        constraints = constraints with { ChunkedLoss = false, Optimizer = OptimizerKind.AdamW, Layerwise = false };
        ConstraintValidator.Validate(spec, workload, budget, constraints);
        List<Strategy> strategies = SearchSpace.Enumerate(spec, workload, constraints);
        strategies.RemoveAll(s => !EngineStrategies.Reproducible(s));
        if (strategies.Count == 0)
            throw new PlanningException("the fixed knobs admit no strategy the engines run (full on bf16, or lora on bf16 or nf4); relax one of them");

        var inventory = ModelInventory.Build(spec);
        var candidates = new List<ShardedCandidate>();
        foreach (Strategy s in strategies)
        foreach (bool off in offload is { } o ? [o] : new[] { false, true })
            candidates.Add(Price(inventory, s, workload, budget, new FsdpLayout(gpus, off), precision, settings));

        var fits = candidates.Where(c => c.Fits);
        IOrderedEnumerable<ShardedCandidate> ordered = objective switch
        {
            Objective.Quality => fits.OrderByDescending(c => c.Quality).ThenBy(c => c.SpeedFactor).ThenBy(c => c.Estimate.PeakBytes),
            Objective.Speed => fits.OrderBy(c => c.SpeedFactor).ThenByDescending(c => c.Quality).ThenBy(c => c.Estimate.PeakBytes),
            _ => fits.OrderBy(c => c.Estimate.PeakBytes).ThenByDescending(c => c.Quality).ThenBy(c => c.SpeedFactor),
        };
        var rejected = candidates.Where(c => !c.Fits).OrderBy(c => c.OverBy).ThenByDescending(c => c.Quality);
        return new ShardedPlan
        {
            Model = modelName, Spec = spec, Gpus = gpus, Workload = workload, Budget = budget, Objective = objective,
            Candidates = [.. ordered.ThenBy(c => c.Describe(), StringComparer.Ordinal), .. rejected.ThenBy(c => c.Describe(), StringComparer.Ordinal)],
        };
    }

    /// <summary>
    /// What the engines' modules keep for backward: Hugging Face blocks with bitsandbytes 4-bit linears (which keep their
    /// input), PyTorch's multi-tensor AdamW, and adapters computing in bf16 (FSDP's mixed-precision policy gathers them in
    /// bf16, and PEFT casts the adapter's input to its weight's dtype).
    /// </summary>
    public static CostSettings EngineSettings { get; } = CostSettings.PyTorchBitsandbytes;

    /// <summary>Prices one strategy on one layout and checks the per-GPU and host budgets.</summary>
    public static ShardedCandidate Price(ModelInventory inv, Strategy s, Workload w, Budget budget, FsdpLayout layout,
        FsdpPrecision precision, CostSettings settings)
    {
        ShardedEstimate e = FsdpShardingCost.Estimate(inv, s, w, budget, layout, precision, settings);
        var overflows = new List<string>();
        long overBy = 0;
        if (budget.Vram is { } vram && e.PeakBytes > vram)
        {
            long running = 0;
            ShardedComponent crossing = ShardedComponent.Fragmentation;
            foreach (ShardedComponent c in ShardedComponents.DeviceOrder)
            {
                running += e.Device[c];
                if (running > vram) { crossing = c; break; }
            }
            overBy = e.PeakBytes - vram;
            overflows.Add($"vram: {crossing.JsonName()} ({ByteSize.Format(e.Device[crossing])}) takes one GPU past the {ByteSize.Format(vram)} budget; peak {ByteSize.Format(e.PeakBytes)} is over by {ByteSize.Format(overBy)}");
        }
        if (budget.Ram is { } ram && e.HostBytes > ram)
        {
            long over = e.HostBytes - ram;
            overBy = Math.Max(overBy, over);
            overflows.Add($"ram: offloaded_host ({ByteSize.Format(e.HostBytes)}) is over the {ByteSize.Format(ram)} budget by {ByteSize.Format(over)}");
        }
        return new ShardedCandidate
        {
            Strategy = s, Estimate = e, Overflows = overflows, OverBy = overBy, Quality = Ranking.Quality(s),
            SpeedFactor = Ranking.SpeedFactor(s) * (layout.OffloadParams ? OffloadSlowdown : 1.0),
        };
    }
}
