using System.Globalization;
using System.Text;
using QuantPeft.Memory.CostModel;
using QuantPeft.Memory.Planning;

namespace QuantPeft.Memory.Reports;

/// <summary>The plan as Markdown: a summary, the ranked candidates and the chosen candidate's breakdown.</summary>
public static class PlanMarkdown
{
    /// <summary>Renders <paramref name="plan"/> with its top <paramref name="top"/> candidates.</summary>
    public static string Write(TrainingPlan plan, int top = 20)
    {
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"# Memory plan: {plan.Model}\n\n");
        sb.Append(CultureInfo.InvariantCulture, $"- parameters: {plan.Spec.ParameterCount:N0}\n");
        sb.Append(CultureInfo.InvariantCulture, $"- workload: seq {plan.Workload.Seq}, grad-accum {plan.Workload.GradAccum}\n");
        sb.Append(CultureInfo.InvariantCulture, $"- budget: {BudgetLine(plan.Budget)}\n");
        sb.Append(CultureInfo.InvariantCulture, $"- objective: {plan.Objective.ToString().ToLowerInvariant()}; {plan.Candidates.Count} candidates, {plan.Candidates.Count(c => c.Fits)} fit\n");
        sb.Append(plan.ChosenCandidate is { } chosen
            ? $"- chosen: **#0 {chosen.Strategy.Describe()}** — peak {ByteSize.Format(chosen.Estimate.PeakBytes)}\n\n"
            : "- chosen: none fits the budget\n\n");

        sb.Append("## Candidates\n\n| # | strategy | fits | peak | host | quality | speed | why not |\n|---:|---|---|---:|---:|---:|---:|---|\n");
        foreach (var (c, i) in plan.Candidates.Take(top).Select((c, i) => (c, i)))
        {
            sb.Append(CultureInfo.InvariantCulture,
                $"| {i} | {c.Strategy.Describe()} | {(c.Fits ? "yes" : "no")} | {ByteSize.Format(c.Estimate.PeakBytes)} | {ByteSize.Format(c.Estimate.HostBytes)} | {c.Quality:0.0} | {c.SpeedFactor:0.00} | {string.Join("; ", c.Overflows.Select(o => o.Message))} |\n");
        }
        if (plan.Candidates.Count > top) sb.Append(CultureInfo.InvariantCulture, $"\n({plan.Candidates.Count - top} more candidates not shown.)\n");

        Candidate? shown = plan.ChosenCandidate ?? plan.Candidates.FirstOrDefault();
        if (shown is not null)
        {
            sb.Append(CultureInfo.InvariantCulture, $"\n## Breakdown of #{plan.Candidates.ToList().IndexOf(shown)} ({shown.Estimate.PeakPhase} peak)\n\n| component | bytes | size |\n|---|---:|---:|\n");
            foreach (MemoryComponent m in MemoryComponents.DeviceOrder)
                sb.Append(CultureInfo.InvariantCulture, $"| {m.JsonName()} | {shown.Estimate.Device[m]:N0} | {ByteSize.Format(shown.Estimate.Device[m])} |\n");
            sb.Append(CultureInfo.InvariantCulture, $"| **peak** | {shown.Estimate.PeakBytes:N0} | {ByteSize.Format(shown.Estimate.PeakBytes)} |\n");
            foreach (var (m, bytes) in shown.Estimate.Host)
                sb.Append(CultureInfo.InvariantCulture, $"| {m.JsonName()} (host) | {bytes:N0} | {ByteSize.Format(bytes)} |\n");
        }
        return sb.ToString();
    }

    /// <summary>One line describing a budget.</summary>
    public static string BudgetLine(Budget b) =>
        $"vram {(b.Vram is { } v ? ByteSize.Format(v) : "unlimited")}, ram {(b.Ram is { } r ? ByteSize.Format(r) : "unlimited")}, " +
        $"overhead {ByteSize.Format(b.EffectiveOverhead)}, fragmentation {b.EffectiveFragmentation.ToString("0.#%", CultureInfo.InvariantCulture)}, device {b.DeviceKind.ToString().ToLowerInvariant()}";
}
