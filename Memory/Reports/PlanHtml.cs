using System.Globalization;
using System.Net;
using System.Text;
using QuantPeft.Memory.CostModel;
using QuantPeft.Memory.Planning;

namespace QuantPeft.Memory.Reports;

/// <summary>The plan as one self-contained HTML page: summary, stacked-bar chart (inline SVG) and the candidate table.</summary>
public static class PlanHtml
{
    /// <summary>Renders <paramref name="plan"/>, charting and listing its top <paramref name="top"/> candidates.</summary>
    public static string Write(TrainingPlan plan, int top = 12)
    {
        var shown = plan.Candidates.Take(top).ToList();
        var sb = new StringBuilder();
        sb.Append("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
        sb.Append(CultureInfo.InvariantCulture, $"<title>Memory plan: {E(plan.Model)}</title>");
        sb.Append("<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}td:nth-child(2){text-align:left}.no{color:#b00}</style>");
        sb.Append("</head><body>\n");
        sb.Append(CultureInfo.InvariantCulture, $"<h1>Memory plan: {E(plan.Model)}</h1>\n<p>{plan.Spec.ParameterCount:N0} parameters; seq {plan.Workload.Seq}; {E(PlanMarkdown.BudgetLine(plan.Budget))}; objective {plan.Objective.ToString().ToLowerInvariant()}.</p>\n");
        sb.Append(plan.ChosenCandidate is { } c
            ? $"<p><b>Chosen: #0 {E(c.Strategy.Describe())}</b>, peak {E(ByteSize.Format(c.Estimate.PeakBytes))}.</p>\n"
            : "<p class=\"no\"><b>No candidate fits the budget.</b></p>\n");
        if (shown.Count > 0)
        {
            sb.Append("<figure>\n");
            sb.Append(PlanChart.Svg(shown, plan.Budget.DeviceLimit, $"Predicted peak of the top {shown.Count} candidates"));
            sb.Append("\n<figcaption>Stacked by component; dashed line: device budget.</figcaption></figure>\n");
        }
        sb.Append("<table><tr><th>#</th><th>strategy</th><th>fits</th><th>peak</th>");
        foreach (MemoryComponent m in MemoryComponents.DeviceOrder) sb.Append(CultureInfo.InvariantCulture, $"<th>{m.JsonName()}</th>");
        sb.Append("<th>why not</th></tr>\n");
        for (int i = 0; i < shown.Count; i++)
        {
            Candidate cand = shown[i];
            sb.Append(CultureInfo.InvariantCulture, $"<tr><td>{i}</td><td>{E(cand.Strategy.Describe())}</td><td>{(cand.Fits ? "yes" : "<span class=\"no\">no</span>")}</td><td>{E(ByteSize.Format(cand.Estimate.PeakBytes))}</td>");
            foreach (MemoryComponent m in MemoryComponents.DeviceOrder)
                sb.Append(CultureInfo.InvariantCulture, $"<td>{E(ByteSize.Format(cand.Estimate.Device[m]))}</td>");
            sb.Append(CultureInfo.InvariantCulture, $"<td>{E(string.Join("; ", cand.Overflows.Select(o => o.Message)))}</td></tr>\n");
        }
        sb.Append("</table>\n</body></html>\n");
        return sb.ToString();
    }

    private static string E(string s) => WebUtility.HtmlEncode(s);
}
