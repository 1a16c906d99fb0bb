using ScottPlot;
using QuantPeft.Memory.CostModel;
using QuantPeft.Memory.Planning;

namespace QuantPeft.Memory.Reports;

/// <summary>
/// A stacked bar per candidate (one segment per memory component) with the device budget as a dashed line; for a
/// sharded plan, one GPU's memory against the per-GPU budget.
/// </summary>
public static class PlanChart
{
    private const double GiB = 1L << 30;

    /// <summary>Renders the chart of <paramref name="candidates"/> as an SVG document.</summary>
    public static string Svg(IReadOnlyList<Candidate> candidates, long? budgetBytes, string title, int width = 900, int height = 480)
    {
        var components = MemoryComponents.DeviceOrder;
        Plot plot = Build(new ScottPlot.Palettes.Category10(), candidates.Count, [.. components.Select(c => c.JsonName())],
            (i, j) => candidates[i].Estimate.Device[components[j]] / GiB,
            budgetBytes, "budget", [.. candidates.Select((_, i) => $"#{i}")], "GiB", title);
        plot.ShowLegend(Alignment.UpperRight);
        return plot.GetSvgXml(width, height);
    }

    /// <summary>The per-GPU chart of sharded <paramref name="candidates"/> as an SVG document.</summary>
    public static string Svg(IReadOnlyList<ShardedCandidate> candidates, long? budgetBytes, string title, int width = 1150, int height = 520) =>
        Build(candidates, budgetBytes, title).GetSvgXml(width, height);

    /// <summary>The per-GPU chart of sharded <paramref name="candidates"/> as PNG bytes.</summary>
    public static byte[] Png(IReadOnlyList<ShardedCandidate> candidates, long? budgetBytes, string title, int width = 1150, int height = 520) =>
        Build(candidates, budgetBytes, title).GetImageBytes(width, height, ImageFormat.Png);

    private static Plot Build(IReadOnlyList<ShardedCandidate> candidates, long? budgetBytes, string title)
    {
        var components = ShardedComponents.DeviceOrder;
        Plot plot = Build(new ScottPlot.Palettes.Category20(), candidates.Count, [.. components.Select(c => c.JsonName())],
            (i, j) => candidates[i].Estimate.Device[components[j]] / GiB,
            budgetBytes, "budget per GPU", [.. candidates.Select(Label)], "GiB per GPU", title);
        plot.ShowLegend(Edge.Right);
        return plot;
    }

    // The bars, the dashed budget line and the axes; the caller places the legend.
    private static Plot Build(IPalette palette, int candidates, IReadOnlyList<string> componentNames, Func<int, int, double> gib,
        long? budgetBytes, string budgetLabel, string[] labels, string yLabel, string title)
    {
        var plot = new Plot();
        StackedMemoryBars.Add(plot, palette, candidates, componentNames, gib);
        if (budgetBytes is { } budget)
        {
            var line = plot.Add.HorizontalLine(budget / GiB);
            line.LineColor = Colors.Red;
            line.LinePattern = LinePattern.Dashed;
            line.LineWidth = 2;
            plot.Legend.ManualItems.Add(new LegendItem { LabelText = budgetLabel, LineColor = Colors.Red, LineWidth = 2 });
        }
        double[] positions = Enumerable.Range(0, candidates).Select(i => (double)i).ToArray();
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(positions, labels);
        plot.Axes.Margins(bottom: 0);
        plot.YLabel(yLabel);
        plot.Title(title);
        return plot;
    }

    // Short enough to sit under a bar: method, rank, base, micro-batch, offload.
    private static string Label(ShardedCandidate c)
    {
        Strategy s = c.Strategy;
        string method = s.IsAdapterMethod ? $"lora r{s.Rank}" : Knob.Name(s.Method);
        return $"{method} {Knob.Name(s.Weights)}\nb{s.Batch}{(s.Checkpointing ? " ckpt" : "")}{(c.Layout.OffloadParams ? " offl" : "")}";
    }
}
