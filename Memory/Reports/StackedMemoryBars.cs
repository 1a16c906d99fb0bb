using ScottPlot;
using ScottPlot.Plottables;

namespace QuantPeft.Memory.Reports;

/// <summary>
/// One stacked bar per candidate, one segment per memory component, with a legend entry for every component that is
/// non-zero somewhere: the shape both the single-device and the per-GPU plan charts draw.
/// </summary>
internal static class StackedMemoryBars
{
    /// <summary>Adds the bars and their legend to <paramref name="plot"/>; <paramref name="gib"/>(candidate, component) in GiB.</summary>
    public static void Add(Plot plot, IPalette palette, int candidates, IReadOnlyList<string> componentNames, Func<int, int, double> gib)
    {
        var bars = new List<Bar>();
        for (int i = 0; i < candidates; i++)
        {
            double running = 0;
            for (int j = 0; j < componentNames.Count; j++)
            {
                double v = gib(i, j);
                if (v <= 0) continue;
                bars.Add(new Bar { Position = i, ValueBase = running, Value = running + v, FillColor = palette.GetColor(j) });
                running += v;
            }
        }
        plot.Add.Bars(bars);
        for (int j = 0; j < componentNames.Count; j++)
        {
            int c = j;
            if (Enumerable.Range(0, candidates).All(i => gib(i, c) == 0)) continue;
            plot.Legend.ManualItems.Add(new LegendItem { LabelText = componentNames[j], FillColor = palette.GetColor(j) });
        }
    }
}
