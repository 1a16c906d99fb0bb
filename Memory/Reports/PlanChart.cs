using ScottPlot;
using QuantPeft.Memory.CostModel;
using QuantPeft.Memory.Planning;

namespace QuantPeft.Memory.Reports;

/// <summary>A stacked bar per candidate (one segment per memory component) with the device budget as a dashed line.</summary>
public static class PlanChart
{
    private const double GiB = 1L << 30;

    /// <summary>Renders the chart of <paramref name="candidates"/> as an SVG document.</summary>
    public static string Svg(IReadOnlyList<Candidate> candidates, long? budgetBytes, string title, int width = 900, int height = 480)
    {
        var plot = new Plot();
        var palette = new ScottPlot.Palettes.Category10();
        var components = MemoryComponents.DeviceOrder;
        StackedMemoryBars.Add(plot, palette, candidates.Count, components.Select(c => c.JsonName()).ToList(),
            (i, j) => candidates[i].Estimate.Device[components[j]] / GiB);
        if (budgetBytes is { } budget)
        {
            var line = plot.Add.HorizontalLine(budget / GiB);
            line.LineColor = Colors.Red;
            line.LinePattern = LinePattern.Dashed;
            line.LineWidth = 2;
            plot.Legend.ManualItems.Add(new LegendItem { LabelText = "budget", LineColor = Colors.Red, LineWidth = 2 });
        }
        double[] positions = Enumerable.Range(0, candidates.Count).Select(i => (double)i).ToArray();
        string[] labels = positions.Select(p => $"#{p}").ToArray();
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(positions, labels);
        plot.Axes.Margins(bottom: 0);
        plot.YLabel("GiB");
        plot.Title(title);
        plot.ShowLegend(Alignment.UpperRight);
        return plot.GetSvgXml(width, height);
    }
}
