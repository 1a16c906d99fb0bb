using System.Globalization;
using Xunit.Abstractions;

namespace QuantPeft.Memory.Tests;

public sealed class PublishedFiguresTests(ITestOutputHelper output)
{
    [Fact]
    public void MedianAbsoluteRelativeErrorIsAtMostTenPercent()
    {
        var rows = PublishedFigures.Rows().ToList();
        output.WriteLine("| source | configuration | published | predicted | error |");
        output.WriteLine("|---|---|---:|---:|---:|");
        foreach (PublishedRow r in rows)
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {r.Source} | {r.Label} | {r.Published:0.##} {r.Unit} | {r.Predicted:0.00} {r.Unit} | {r.RelativeError:+0.0%;-0.0%} |"));
        double median = Median(rows.Select(r => Math.Abs(r.RelativeError)));
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"median |error| over {rows.Count} rows: {median:0.0%}"));
        Assert.True(median <= 0.10, $"median absolute relative error {median:P1} > 10%");
    }

    [Fact]
    public void EveryRowIsWithinFortyPercent()
    {
        // A loose per-row bound: catches a mechanism that breaks badly without tuning to any single row.
        foreach (PublishedRow r in PublishedFigures.Rows())
            Assert.True(Math.Abs(r.RelativeError) <= 0.40, $"{r.Source} {r.Label}: predicted {r.Predicted:0.00} vs {r.Published} {r.Unit}");
    }

    private static double Median(IEnumerable<double> values)
    {
        var v = values.Order().ToArray();
        return v.Length % 2 == 1 ? v[v.Length / 2] : (v[v.Length / 2 - 1] + v[v.Length / 2]) / 2;
    }
}
