using ScottPlot;

namespace QuantPeft.Memory.Reports;

/// <summary>Predicted beside measured peak per strategy (two bars each), for <c>qpeft bench-memory</c>.</summary>
public static class BenchMemoryChart
{
    private const double MiB = 1 << 20;

    /// <summary>The chart as an SVG document.</summary>
    public static string Svg(IReadOnlyList<BenchMemoryRow> rows, string title, int width = 900, int height = 480) =>
        Build(rows, title).GetSvgXml(width, height);

    /// <summary>The chart as PNG bytes.</summary>
    public static byte[] Png(IReadOnlyList<BenchMemoryRow> rows, string title, int width = 900, int height = 480) =>
        Build(rows, title).GetImageBytes(width, height, ImageFormat.Png);

    private static Plot Build(IReadOnlyList<BenchMemoryRow> rows, string title)
    {
        var plot = new Plot();
        Color predicted = Colors.SteelBlue, measured = Colors.DarkOrange;
        var bars = new List<Bar>();
        for (int i = 0; i < rows.Count; i++)
        {
            bars.Add(new Bar { Position = i - 0.2, Value = rows[i].PredictedBytes / MiB, Size = 0.4, FillColor = predicted });
            if (rows[i].MeasuredBytes is { } m)
                bars.Add(new Bar { Position = i + 0.2, Value = m / MiB, Size = 0.4, FillColor = measured });
        }
        plot.Add.Bars(bars);
        plot.Legend.ManualItems.Add(new LegendItem { LabelText = "predicted", FillColor = predicted });
        plot.Legend.ManualItems.Add(new LegendItem { LabelText = "measured", FillColor = measured });
        double[] positions = Enumerable.Range(0, rows.Count).Select(i => (double)i).ToArray();
        string[] labels = rows.Select(r => r.ErrorPercent is { } e ? $"{r.Name}\n{e:+0.0;-0.0}%" : $"{r.Name}\nfailed").ToArray();
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(positions, labels);
        plot.Axes.Margins(bottom: 0);
        plot.YLabel("peak above runtime (MiB)");
        plot.Title(title);
        plot.ShowLegend(Alignment.UpperLeft);
        return plot;
    }
}
