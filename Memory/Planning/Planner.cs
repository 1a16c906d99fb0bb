using QuantPeft.Formats.HuggingFace;
using QuantPeft.Memory.CostModel;

namespace QuantPeft.Memory.Planning;

/// <summary>
/// Chooses a training strategy that fits a memory budget: validates the fixed knobs, enumerates the open ones
/// (<see cref="SearchSpace"/>), prices each combination (<see cref="MemoryCostModel"/>), checks the budgets and
/// ranks the candidates (<see cref="Ranking"/>).
/// </summary>
public static class Planner
{
    /// <summary>Plans fine-tuning of <paramref name="spec"/>.</summary>
    /// <param name="spec">The architecture.</param>
    /// <param name="workload">Sequence length, accumulation, adapter dropout.</param>
    /// <param name="budget">Memory budgets, overhead, device kind.</param>
    /// <param name="constraints">Fixed knobs; null ones are searched.</param>
    /// <param name="objective">Ranking objective.</param>
    /// <param name="settings">Runtime behaviour (default: QuantPeft's runtime).</param>
    /// <param name="modelName">Name shown in reports.</param>
    /// <param name="uncalibrated">Strategies to leave out of open searches (default: <see cref="UncalibratedStrategies.Shipped"/>).</param>
    /// <exception cref="PlanningException">Contradictory knobs, a budget below the overhead, or no strategy matching the fixed knobs.</exception>
    public static TrainingPlan Plan(ModelSpec spec, Workload workload, Budget budget, Constraints constraints,
        Objective objective = Objective.Quality, CostSettings? settings = null, string modelName = "model",
        IReadOnlyList<UncalibratedStrategy>? uncalibrated = null)
    {
        settings ??= CostSettings.QuantPeft;
        ConstraintValidator.Validate(spec, workload, budget, constraints);
        List<Strategy> strategies = SearchSpace.Enumerate(spec, workload, constraints);
        // The planner must not choose what it cannot price: a strategy the calibration matrix found outside ±5 %
        // stays out of a search whose method is open (a method the caller fixes is still priced, as asked).
        strategies.RemoveAll(s => UncalibratedStrategies.Excludes(uncalibrated ?? UncalibratedStrategies.Shipped, s, workload, constraints, budget.DeviceKind));
        if (strategies.Count == 0)
            throw new PlanningException("the fixed knobs admit no strategy (e.g. --lisa-layers or --prune with --weights the method cannot use); relax one of them");

        var inventories = new Dictionary<double, ModelInventory>();
        var candidates = new List<Candidate>(strategies.Count);
        foreach (Strategy s in strategies)
        {
            if (!inventories.TryGetValue(s.Prune, out ModelInventory? inv))
                inventories[s.Prune] = inv = ModelInventory.Build(spec, s.Prune);
            candidates.Add(Price(inv, s, workload, budget, settings));
        }
        return new TrainingPlan
        {
            Model = modelName, Spec = spec, Workload = workload, Budget = budget, Objective = objective,
            Candidates = Ranking.Order(candidates, objective),
        };
    }

    /// <summary>Prices one strategy and checks it against the budgets.</summary>
    public static Candidate Price(ModelInventory inv, Strategy s, Workload workload, Budget budget, CostSettings settings)
    {
        MemoryEstimate e = MemoryCostModel.Estimate(inv, s, workload, budget, settings);
        var overflows = new List<Overflow>();
        string deviceBudget = budget.DeviceKind == DeviceKind.Cpu ? "ram" : "vram";
        long hostOnDevice = budget.DeviceKind == DeviceKind.Cpu ? e.HostBytes : 0;
        if (budget.DeviceLimit is { } limit && e.PeakBytes + hostOnDevice > limit)
        {
            long running = 0;
            MemoryComponent crossing = MemoryComponent.Fragmentation;
            foreach (MemoryComponent c in MemoryComponents.DeviceOrder)
            {
                running += e.Device[c];
                if (running > limit) { crossing = c; break; }
            }
            long over = e.PeakBytes + hostOnDevice - limit;
            overflows.Add(new Overflow(deviceBudget, crossing, over,
                $"{deviceBudget}: {crossing.JsonName()} ({ByteSize.Format(e.Device[crossing])}) takes the total past the {ByteSize.Format(limit)} budget; peak {ByteSize.Format(e.PeakBytes + hostOnDevice)} is over by {ByteSize.Format(over)}"));
        }
        if (budget.DeviceKind == DeviceKind.Cuda && budget.Ram is { } ram && e.HostBytes > ram)
        {
            long over = e.HostBytes - ram;
            overflows.Add(new Overflow("ram", MemoryComponent.PagedStatesHost, over,
                $"ram: paged_states_host ({ByteSize.Format(e.HostBytes)}) is over the {ByteSize.Format(ram)} budget by {ByteSize.Format(over)}"));
        }
        return new Candidate
        {
            Strategy = s, Estimate = e, Overflows = overflows,
            Quality = Ranking.Quality(s), SpeedFactor = Ranking.SpeedFactor(s),
        };
    }
}
