using ScottPlot;
using QuantPeft.Memory.CostModel;
using QuantPeft.Memory.Planning;

namespace QuantPeft.Memory.Reports;

/// <summary>A stacked bar of one GPU's predicted memory per candidate (one segment per component) with the per-GPU budget as a dashed line.</summary>
public static class ShardedPlanChart
{
    private const double GiB = 1L << 30;

    /// <summary>The chart as an SVG document.</summary>
    public static string Svg(IReadOnlyList<ShardedCandidate> candidates, long? budgetBytes, string title, int width = 1150, int height = 520) =>
        Build(candidates, budgetBytes, title).GetSvgXml(width, height);

    /// <summary>The chart as PNG bytes.</summary>
    public static byte[] Png(IReadOnlyList<ShardedCandidate> candidates, long? budgetBytes, string title, int width = 1150, int height = 520) =>
        Build(candidates, budgetBytes, title).GetImageBytes(width, height, ImageFormat.Png);

    private static Plot Build(IReadOnlyList<ShardedCandidate> candidates, long? budgetBytes, string title)
    {
        var plot = new Plot();
        var palette = new ScottPlot.Palettes.Category20();
        var components = ShardedComponents.DeviceOrder;
        StackedMemoryBars.Add(plot, palette, candidates.Count, components.Select(c => c.JsonName()).ToList(),
            (i, j) => candidates[i].Estimate.Device[components[j]] / GiB);
        if (budgetBytes is { } budget)
        {
            var line = plot.Add.HorizontalLine(budget / GiB);
            line.LineColor = Colors.Red;
            line.LinePattern = LinePattern.Dashed;
            line.LineWidth = 2;
            plot.Legend.ManualItems.Add(new LegendItem { LabelText = "budget per GPU", LineColor = Colors.Red, LineWidth = 2 });
        }
        double[] positions = Enumerable.Range(0, candidates.Count).Select(i => (double)i).ToArray();
        string[] labels = candidates.Select(c => Label(c)).ToArray();
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(positions, labels);
        plot.Axes.Margins(bottom: 0);
        plot.YLabel("GiB per GPU");
        plot.Title(title);
        plot.ShowLegend(Edge.Right);
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
