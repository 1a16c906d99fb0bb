using System.Globalization;
using QuantPeft.Memory.CostModel;
using QuantPeft.Memory.Planning;
using Spectre.Console;

namespace QuantPeft.Cli.Commands;

/// <summary>Renders a sharded plan as Spectre.Console tables (candidates, then the chosen per-GPU breakdown) into a string.</summary>
internal static class ShardedPlanTable
{
    public static string Render(ShardedPlan plan, int top, bool ansi)
    {
        var writer = new StringWriter();
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Ansi = ansi ? AnsiSupport.Yes : AnsiSupport.No,
            ColorSystem = ansi ? ColorSystemSupport.Standard : ColorSystemSupport.NoColors,
            Out = new AnsiConsoleOutput(writer),
        });
        console.Profile.Width = 170;
        console.WriteLine($"{plan.Model}: {plan.Spec.ParameterCount:N0} parameters, seq {plan.Workload.Seq}; {plan.Gpus} GPUs, FSDP full shard; per GPU: {QuantPeft.Memory.Reports.PlanMarkdown.BudgetLine(plan.Budget)}");
        console.WriteLine($"{plan.Candidates.Count} candidates, {plan.Candidates.Count(c => c.Fits)} fit; objective {plan.Objective.ToString().ToLowerInvariant()}");

        var table = new Table().Border(TableBorder.Rounded);
        table.AddColumn("#").AddColumn("strategy").AddColumn("fits").AddColumn(new TableColumn("peak/GPU").RightAligned())
            .AddColumn(new TableColumn("host").RightAligned()).AddColumn(new TableColumn("quality").RightAligned())
            .AddColumn(new TableColumn("speed").RightAligned()).AddColumn("why not");
        foreach (var (c, i) in plan.Candidates.Take(top).Select((c, i) => (c, i)))
            table.AddRow(
                new Text(i.ToString(CultureInfo.InvariantCulture)), new Text(c.Describe()),
                new Markup(c.Fits ? "[green]yes[/]" : "[red]no[/]"),
                new Text(ByteSize.Format(c.Estimate.PeakBytes)), new Text(ByteSize.Format(c.Estimate.HostBytes)),
                new Text(c.Quality.ToString("0.0", CultureInfo.InvariantCulture)),
                new Text(c.SpeedFactor.ToString("0.00", CultureInfo.InvariantCulture)),
                new Text(string.Join("; ", c.Overflows)));
        console.Write(table);

        ShardedCandidate? shown = plan.ChosenCandidate;
        if (shown is null)
        {
            console.WriteLine("No candidate fits the budget.");
            return writer.ToString();
        }
        var breakdown = new Table().Border(TableBorder.Rounded).Title($"#0 per-GPU breakdown ({shown.Estimate.PeakPhase} peak)");
        breakdown.AddColumn("component").AddColumn(new TableColumn("size").RightAligned()).AddColumn(new TableColumn("bytes").RightAligned());
        foreach (ShardedComponent m in ShardedComponents.DeviceOrder)
            breakdown.AddRow(m.JsonName(), ByteSize.Format(shown.Estimate.Device[m]), shown.Estimate.Device[m].ToString("N0", CultureInfo.InvariantCulture));
        breakdown.AddRow("peak per GPU", ByteSize.Format(shown.Estimate.PeakBytes), shown.Estimate.PeakBytes.ToString("N0", CultureInfo.InvariantCulture));
        if (shown.Estimate.HostBytes > 0)
            breakdown.AddRow("offloaded_host (all ranks)", ByteSize.Format(shown.Estimate.HostBytes), shown.Estimate.HostBytes.ToString("N0", CultureInfo.InvariantCulture));
        console.Write(breakdown);
        return writer.ToString();
    }
}
