using System.Globalization;
using System.Text;
using QuantPeft.Memory.CostModel;
using QuantPeft.Memory.Planning;

namespace QuantPeft.Memory.Reports;

/// <summary>A sharded plan as Markdown: a summary, the ranked candidates and the chosen candidate's per-GPU breakdown.</summary>
public static class ShardedPlanMarkdown
{
    /// <summary>Renders <paramref name="plan"/> with its top <paramref name="top"/> candidates.</summary>
    public static string Write(ShardedPlan plan, int top = 20)
    {
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"# Memory plan: {plan.Model} on {plan.Gpus} GPUs (FSDP full shard)\n\n");
        sb.Append(CultureInfo.InvariantCulture, $"- parameters: {plan.Spec.ParameterCount:N0}\n");
        sb.Append(CultureInfo.InvariantCulture, $"- workload: seq {plan.Workload.Seq}, grad-accum {plan.Workload.GradAccum}, micro-batch per GPU\n");
        sb.Append(CultureInfo.InvariantCulture, $"- budget per GPU: {PlanMarkdown.BudgetLine(plan.Budget)}\n");
        sb.Append(CultureInfo.InvariantCulture, $"- objective: {plan.Objective.ToString().ToLowerInvariant()}; {plan.Candidates.Count} candidates, {plan.Candidates.Count(c => c.Fits)} fit\n");
        sb.Append(plan.ChosenCandidate is { } chosen
            ? $"- chosen: **#0 {chosen.Describe()}** — peak per GPU {ByteSize.Format(chosen.Estimate.PeakBytes)}\n\n"
            : "- chosen: none fits the budget\n\n");
        sb.Append("## Candidates\n\n| # | strategy | fits | peak per GPU | host | quality | speed | why not |\n|---:|---|---|---:|---:|---:|---:|---|\n");
        foreach (var (c, i) in plan.Candidates.Take(top).Select((c, i) => (c, i)))
            sb.Append(CultureInfo.InvariantCulture,
                $"| {i} | {c.Describe()} | {(c.Fits ? "yes" : "no")} | {ByteSize.Format(c.Estimate.PeakBytes)} | {ByteSize.Format(c.Estimate.HostBytes)} | {c.Quality:0.0} | {c.SpeedFactor:0.00} | {string.Join("; ", c.Overflows)} |\n");
        if (plan.Candidates.Count > top) sb.Append(CultureInfo.InvariantCulture, $"\n({plan.Candidates.Count - top} more candidates not shown.)\n");
        ShardedCandidate? shown = plan.ChosenCandidate ?? plan.Candidates.FirstOrDefault();
        if (shown is not null)
        {
            sb.Append(CultureInfo.InvariantCulture, $"\n## Per-GPU breakdown of #{plan.Candidates.ToList().IndexOf(shown)} ({shown.Estimate.PeakPhase} peak)\n\n| component | bytes | size |\n|---|---:|---:|\n");
            foreach (ShardedComponent m in ShardedComponents.DeviceOrder)
                sb.Append(CultureInfo.InvariantCulture, $"| {m.JsonName()} | {shown.Estimate.Device[m]:N0} | {ByteSize.Format(shown.Estimate.Device[m])} |\n");
            sb.Append(CultureInfo.InvariantCulture, $"| **peak per GPU** | {shown.Estimate.PeakBytes:N0} | {ByteSize.Format(shown.Estimate.PeakBytes)} |\n");
            if (shown.Estimate.HostBytes > 0)
                sb.Append(CultureInfo.InvariantCulture, $"| offloaded_host (all ranks) | {shown.Estimate.HostBytes:N0} | {ByteSize.Format(shown.Estimate.HostBytes)} |\n");
        }
        return sb.ToString();
    }
}
