using QuantPeft.Memory.CostModel;
using QuantPeft.Memory.Planning;

namespace QuantPeft.Memory.Reports;

/// <summary>
/// A plan as the Markdown report and the console table print it, whether it prices one device or one GPU of an
/// FSDP-sharded run: the summary, one row per candidate and the breakdown of candidate #0. Both renderings are written
/// once against this shape, so a single-device and a sharded report differ only where the plans differ.
/// </summary>
/// <param name="Model">The model's name (preset or path).</param>
/// <param name="ParameterCount">The model's parameter count.</param>
/// <param name="Workload">The workload planned for.</param>
/// <param name="Budget">The budget planned for (per GPU when <paramref name="Gpus"/> is set).</param>
/// <param name="Objective">The ranking objective.</param>
/// <param name="Gpus">The GPUs of an FSDP-sharded plan, or null for a plan of one device.</param>
/// <param name="Candidates">Every candidate in rank order.</param>
/// <param name="First">The breakdown of candidate #0, or null when there are no candidates.</param>
public sealed record PlanView(string Model, long ParameterCount, Workload Workload, Budget Budget, Objective Objective, int? Gpus,
    IReadOnlyList<PlanView.Row> Candidates, PlanView.Breakdown? First)
{
    /// <summary>Whether candidate #0 fits, i.e. the plan recommends it.</summary>
    public bool HasChoice => Candidates.Count > 0 && Candidates[0].Fits;
    /// <summary>How many candidates fit.</summary>
    public int FitCount => Candidates.Count(c => c.Fits);
    /// <summary>What the peak is called: the device's, or one GPU's.</summary>
    public string PeakLabel => Gpus is null ? "peak" : "peak per GPU";
    /// <summary>What the breakdown is called.</summary>
    public string BreakdownLabel => Gpus is null ? "breakdown" : "per-GPU breakdown";

    /// <summary>One candidate as printed.</summary>
    /// <param name="Strategy">The strategy in command-line spelling.</param>
    /// <param name="Fits">Whether every budget holds.</param>
    /// <param name="PeakBytes">Predicted device peak (one GPU's for a sharded plan).</param>
    /// <param name="HostBytes">Predicted host bytes.</param>
    /// <param name="Quality">Quality points.</param>
    /// <param name="SpeedFactor">Relative time per token.</param>
    /// <param name="WhyNot">The overflows, one clause each, or empty.</param>
    public sealed record Row(string Strategy, bool Fits, long PeakBytes, long HostBytes, double Quality, double SpeedFactor, string WhyNot);

    /// <summary>A candidate's memory by component, as printed under the candidate table.</summary>
    /// <param name="PeakPhase">The phase at which the peak occurs.</param>
    /// <param name="Device">Device bytes by component name, in the cost model's order.</param>
    /// <param name="PeakBytes">The device peak.</param>
    /// <param name="Host">Host rows printed after the peak, each already labelled.</param>
    public sealed record Breakdown(string PeakPhase, IReadOnlyList<(string Component, long Bytes)> Device, long PeakBytes,
        IReadOnlyList<(string Component, long Bytes)> Host);

    /// <summary>The view of a single-device plan.</summary>
    public static PlanView Of(TrainingPlan plan) =>
        new(plan.Model, plan.Spec.ParameterCount, plan.Workload, plan.Budget, plan.Objective, Gpus: null,
            [.. plan.Candidates.Select(c => new Row(c.Strategy.Describe(), c.Fits, c.Estimate.PeakBytes, c.Estimate.HostBytes,
                c.Quality, c.SpeedFactor, string.Join("; ", c.Overflows.Select(o => o.Message))))],
            plan.Candidates.FirstOrDefault()?.Estimate is { } e
                ? new Breakdown(e.PeakPhase, [.. MemoryComponents.DeviceOrder.Select(m => (m.JsonName(), e.Device[m]))], e.PeakBytes,
                    [.. e.Host.Select(h => (h.Key.JsonName() + " (host)", h.Value))])
                : null);

    /// <summary>The view of an FSDP-sharded plan: peaks and breakdown are one GPU's, host bytes all ranks'.</summary>
    public static PlanView Of(ShardedPlan plan) =>
        new(plan.Model, plan.Spec.ParameterCount, plan.Workload, plan.Budget, plan.Objective, plan.Gpus,
            [.. plan.Candidates.Select(c => new Row(c.Describe(), c.Fits, c.Estimate.PeakBytes, c.Estimate.HostBytes,
                c.Quality, c.SpeedFactor, string.Join("; ", c.Overflows)))],
            plan.Candidates.FirstOrDefault()?.Estimate is { } e
                ? new Breakdown(e.PeakPhase, [.. ShardedComponents.DeviceOrder.Select(m => (m.JsonName(), e.Device[m]))], e.PeakBytes,
                    e.HostBytes > 0 ? [("offloaded_host (all ranks)", e.HostBytes)] : [])
                : null);
}
