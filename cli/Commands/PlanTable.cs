using QuantPeft.Memory.CostModel;
using QuantPeft.Memory.Planning;
using Spectre.Console;

namespace QuantPeft.Cli.Commands;

/// <summary>Renders a plan as Spectre.Console tables (candidates, then the chosen breakdown) into a string.</summary>
internal static class PlanTable
{
    public static string Render(TrainingPlan plan, int top, bool ansi)
    {
        var writer = new StringWriter();
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Ansi = ansi ? AnsiSupport.Yes : AnsiSupport.No,
            ColorSystem = ansi ? ColorSystemSupport.Standard : ColorSystemSupport.NoColors,
            Out = new AnsiConsoleOutput(writer),
        });
        console.Profile.Width = 160;
        console.WriteLine($"{plan.Model}: {plan.Spec.ParameterCount:N0} parameters, seq {plan.Workload.Seq}; {PlanMarkdownBudget(plan)}");
        console.WriteLine($"{plan.Candidates.Count} candidates, {plan.Candidates.Count(c => c.Fits)} fit; objective {plan.Objective.ToString().ToLowerInvariant()}");

        var table = new Table().Border(TableBorder.Rounded);
        table.AddColumn("#").AddColumn("strategy").AddColumn("fits").AddColumn(new TableColumn("peak").RightAligned())
            .AddColumn(new TableColumn("host").RightAligned()).AddColumn(new TableColumn("quality").RightAligned())
            .AddColumn(new TableColumn("speed").RightAligned()).AddColumn("why not");
        foreach (var (c, i) in plan.Candidates.Take(top).Select((c, i) => (c, i)))
        {
            table.AddRow(
                new Text(i.ToString(System.Globalization.CultureInfo.InvariantCulture)),
                new Text(c.Strategy.Describe()),
                new Markup(c.Fits ? "[green]yes[/]" : "[red]no[/]"),
                new Text(ByteSize.Format(c.Estimate.PeakBytes)),
                new Text(ByteSize.Format(c.Estimate.HostBytes)),
                new Text(c.Quality.ToString("0.0", System.Globalization.CultureInfo.InvariantCulture)),
                new Text(c.SpeedFactor.ToString("0.00", System.Globalization.CultureInfo.InvariantCulture)),
                new Text(string.Join("; ", c.Overflows.Select(o => o.Message))));
        }
        console.Write(table);

        Candidate? shown = plan.ChosenCandidate;
        if (shown is null)
        {
            console.WriteLine("No candidate fits the budget.");
            return writer.ToString();
        }
        var breakdown = new Table().Border(TableBorder.Rounded).Title($"#0 breakdown ({shown.Estimate.PeakPhase} peak)");
        breakdown.AddColumn("component").AddColumn(new TableColumn("size").RightAligned()).AddColumn(new TableColumn("bytes").RightAligned());
        foreach (MemoryComponent m in MemoryComponents.DeviceOrder)
            breakdown.AddRow(m.JsonName(), ByteSize.Format(shown.Estimate.Device[m]), shown.Estimate.Device[m].ToString("N0", System.Globalization.CultureInfo.InvariantCulture));
        breakdown.AddRow("peak", ByteSize.Format(shown.Estimate.PeakBytes), shown.Estimate.PeakBytes.ToString("N0", System.Globalization.CultureInfo.InvariantCulture));
        foreach (var (m, bytes) in shown.Estimate.Host)
            breakdown.AddRow(m.JsonName() + " (host)", ByteSize.Format(bytes), bytes.ToString("N0", System.Globalization.CultureInfo.InvariantCulture));
        console.Write(breakdown);
        return writer.ToString();
    }

    private static string PlanMarkdownBudget(TrainingPlan plan) => QuantPeft.Memory.Reports.PlanMarkdown.BudgetLine(plan.Budget);
}
