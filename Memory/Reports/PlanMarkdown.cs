using System.Globalization;
using System.Text;
using QuantPeft.Memory.Planning;

namespace QuantPeft.Memory.Reports;

/// <summary>
/// A plan as Markdown: a summary, the ranked candidates and candidate #0's breakdown. A sharded plan prints the same
/// report with its peaks and breakdown per GPU.
/// </summary>
public static class PlanMarkdown
{
    /// <summary>Renders <paramref name="plan"/> with its top <paramref name="top"/> candidates.</summary>
    public static string Write(TrainingPlan plan, int top = 20) => Write(PlanView.Of(plan), top);

    /// <summary>Renders a plan sharded over several GPUs with its top <paramref name="top"/> candidates.</summary>
    public static string Write(ShardedPlan plan, int top = 20) => Write(PlanView.Of(plan), top);

    /// <summary>Renders <paramref name="plan"/> with its top <paramref name="top"/> candidates.</summary>
    public static string Write(PlanView plan, int top = 20)
    {
        string perGpu = plan.Gpus is null ? "" : " per GPU";
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"# Memory plan: {plan.Model}{(plan.Gpus is { } gpus ? $" on {gpus} GPUs (FSDP full shard)" : "")}\n\n");
        sb.Append(CultureInfo.InvariantCulture, $"- parameters: {plan.ParameterCount:N0}\n");
        sb.Append(CultureInfo.InvariantCulture, $"- workload: seq {plan.Workload.Seq}, grad-accum {plan.Workload.GradAccum}{(plan.Gpus is null ? "" : ", micro-batch per GPU")}\n");
        sb.Append(CultureInfo.InvariantCulture, $"- budget{perGpu}: {BudgetLine(plan.Budget)}\n");
        sb.Append(CultureInfo.InvariantCulture, $"- objective: {plan.Objective.ToString().ToLowerInvariant()}; {plan.Candidates.Count} candidates, {plan.FitCount} fit\n");
        sb.Append(plan.HasChoice
            ? $"- chosen: **#0 {plan.Candidates[0].Strategy}** — {plan.PeakLabel} {ByteSize.Format(plan.Candidates[0].PeakBytes)}\n\n"
            : "- chosen: none fits the budget\n\n");

        sb.Append(CultureInfo.InvariantCulture, $"## Candidates\n\n| # | strategy | fits | {plan.PeakLabel} | host | quality | speed | why not |\n|---:|---|---|---:|---:|---:|---:|---|\n");
        foreach (var (c, i) in plan.Candidates.Take(top).Select((c, i) => (c, i)))
        {
            sb.Append(CultureInfo.InvariantCulture,
                $"| {i} | {c.Strategy} | {(c.Fits ? "yes" : "no")} | {ByteSize.Format(c.PeakBytes)} | {ByteSize.Format(c.HostBytes)} | {c.Quality:0.0} | {c.SpeedFactor:0.00} | {c.WhyNot} |\n");
        }
        if (plan.Candidates.Count > top) sb.Append(CultureInfo.InvariantCulture, $"\n({plan.Candidates.Count - top} more candidates not shown.)\n");

        if (plan.First is { } shown)
        {
            string title = char.ToUpperInvariant(plan.BreakdownLabel[0]) + plan.BreakdownLabel[1..];
            sb.Append(CultureInfo.InvariantCulture, $"\n## {title} of #0 ({shown.PeakPhase} peak)\n\n| component | bytes | size |\n|---|---:|---:|\n");
            foreach (var (name, bytes) in shown.Device)
                sb.Append(CultureInfo.InvariantCulture, $"| {name} | {bytes:N0} | {ByteSize.Format(bytes)} |\n");
            sb.Append(CultureInfo.InvariantCulture, $"| **{plan.PeakLabel}** | {shown.PeakBytes:N0} | {ByteSize.Format(shown.PeakBytes)} |\n");
            foreach (var (name, bytes) in shown.Host)
                sb.Append(CultureInfo.InvariantCulture, $"| {name} | {bytes:N0} | {ByteSize.Format(bytes)} |\n");
        }
        return sb.ToString();
    }

    /// <summary>One line describing a budget.</summary>
    public static string BudgetLine(Budget b) =>
        $"vram {(b.Vram is { } v ? ByteSize.Format(v) : "unlimited")}, ram {(b.Ram is { } r ? ByteSize.Format(r) : "unlimited")}, " +
        $"overhead {ByteSize.Format(b.EffectiveOverhead)}, fragmentation {b.EffectiveFragmentation.ToString("0.#%", CultureInfo.InvariantCulture)}, device {b.DeviceKind.ToString().ToLowerInvariant()}";
}
