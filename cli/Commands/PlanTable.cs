using System.Globalization;
using QuantPeft.Memory.Planning;
using QuantPeft.Memory.Reports;
using Spectre.Console;

namespace QuantPeft.Cli.Commands;

/// <summary>
/// Renders a plan as Spectre.Console tables (candidates, then the chosen candidate's breakdown) into a string; a
/// sharded plan shows its peaks and breakdown per GPU.
/// </summary>
internal static class PlanTable
{
    public static string Render(TrainingPlan plan, int top, bool ansi) => Render(PlanView.Of(plan), top, ansi, width: 160);

    public static string Render(ShardedPlan plan, int top, bool ansi) => Render(PlanView.Of(plan), top, ansi, width: 170);

    private static string Render(PlanView plan, int top, bool ansi, int width)
    {
        var writer = new StringWriter();
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Ansi = ansi ? AnsiSupport.Yes : AnsiSupport.No,
            ColorSystem = ansi ? ColorSystemSupport.Standard : ColorSystemSupport.NoColors,
            Out = new AnsiConsoleOutput(writer),
        });
        console.Profile.Width = width;
        string sharding = plan.Gpus is { } gpus ? $"{gpus} GPUs, FSDP full shard; per GPU: " : "";
        console.WriteLine($"{plan.Model}: {plan.ParameterCount:N0} parameters, seq {plan.Workload.Seq}; {sharding}{PlanMarkdown.BudgetLine(plan.Budget)}");
        console.WriteLine($"{plan.Candidates.Count} candidates, {plan.FitCount} fit; objective {plan.Objective.ToString().ToLowerInvariant()}");

        var table = new Table().Border(TableBorder.Rounded);
        table.AddColumn("#").AddColumn("strategy").AddColumn("fits").AddColumn(new TableColumn(plan.Gpus is null ? "peak" : "peak/GPU").RightAligned())
            .AddColumn(new TableColumn("host").RightAligned()).AddColumn(new TableColumn("quality").RightAligned())
            .AddColumn(new TableColumn("speed").RightAligned()).AddColumn("why not");
        foreach (var (c, i) in plan.Candidates.Take(top).Select((c, i) => (c, i)))
        {
            table.AddRow(
                new Text(i.ToString(CultureInfo.InvariantCulture)),
                new Text(c.Strategy),
                new Markup(c.Fits ? "[green]yes[/]" : "[red]no[/]"),
                new Text(ByteSize.Format(c.PeakBytes)),
                new Text(ByteSize.Format(c.HostBytes)),
                new Text(c.Quality.ToString("0.0", CultureInfo.InvariantCulture)),
                new Text(c.SpeedFactor.ToString("0.00", CultureInfo.InvariantCulture)),
                new Text(c.WhyNot));
        }
        console.Write(table);

        if (!plan.HasChoice || plan.First is not { } shown)
        {
            console.WriteLine("No candidate fits the budget.");
            return writer.ToString();
        }
        var breakdown = new Table().Border(TableBorder.Rounded).Title($"#0 {plan.BreakdownLabel} ({shown.PeakPhase} peak)");
        breakdown.AddColumn("component").AddColumn(new TableColumn("size").RightAligned()).AddColumn(new TableColumn("bytes").RightAligned());
        foreach (var (name, bytes) in shown.Device)
            breakdown.AddRow(name, ByteSize.Format(bytes), bytes.ToString("N0", CultureInfo.InvariantCulture));
        breakdown.AddRow(plan.PeakLabel, ByteSize.Format(shown.PeakBytes), shown.PeakBytes.ToString("N0", CultureInfo.InvariantCulture));
        foreach (var (name, bytes) in shown.Host)
            breakdown.AddRow(name, ByteSize.Format(bytes), bytes.ToString("N0", CultureInfo.InvariantCulture));
        console.Write(breakdown);
        return writer.ToString();
    }
}
