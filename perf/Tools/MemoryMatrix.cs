using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using ScottPlot;

namespace QuantPeft.Perf.Tools;

/// <summary>
/// Gathers <c>qpeft bench-memory</c> folders (one per model × batch × seq, as perf/calibrate-memory.sh writes them)
/// into the calibration matrix: a markdown table of predicted against measured peak per strategy and shape, the
/// merged raw JSON, and a chart of the error per strategy with one marker per shape, against the ±5 % band.
/// <c>perf memory-matrix OUT_PREFIX "LABEL" BENCH_DIR…</c> writes OUT_PREFIX.md, .json, .png and .svg.
/// </summary>
internal static class MemoryMatrix
{
    private sealed record Cell(string Model, string Strategy, string Summary, int Batch, int Seq, double? PredictedMiB, double? MeasuredMiB, double? ErrorPercent, string? Failure)
    {
        public string Shape => $"{ShortModel(Model)} b{Batch}×s{Seq}";
    }

    public static int Run(string[] args)
    {
        if (args.Length < 4) { Console.Error.WriteLine("usage: memory-matrix OUT_PREFIX LABEL BENCH_DIR..."); return 1; }
        string prefix = args[1], label = args[2];
        var cells = new List<Cell>();
        var raw = new JsonArray();
        foreach (string dir in args[3..])
        {
            string file = Path.Combine(dir, "bench-memory.json");
            if (!File.Exists(file)) { Console.Error.WriteLine($"{file}: not found (shape not measured)"); continue; }
            var root = JsonNode.Parse(File.ReadAllText(file))!;
            raw.Add(root.DeepClone());
            string model = (string)root["model"]!;
            int batch = (int)root["batch"]!, seq = (int)root["seq"]!;
            foreach (var s in root["strategies"]!.AsArray())
            {
                double? Mib(string key) => s![key] is JsonNode n && n.GetValueKind() == JsonValueKind.Number ? (double)n / (1 << 20) : null;
                // bench-memory writes both above the runtime: the plan without its overhead term, the resident peak above the warmed baseline.
                double? predicted = Mib("predicted_bytes");
                double? measured = Mib("measured_bytes");
                double? error = s!["error_percent"] is JsonNode e && e.GetValueKind() == JsonValueKind.Number ? (double)e : null;
                cells.Add(new Cell(model, (string)s["name"]!, (string?)s["summary"] ?? "", batch, seq, predicted, measured, error, (string?)s["failure"]));
            }
        }
        var md = new StringBuilder();
        md.AppendLine($"# Memory calibration matrix: predicted vs measured peak").AppendLine().AppendLine(label).AppendLine();
        md.AppendLine("Error = (predicted − measured) / measured, both above the warmed runtime baseline. Target: within ±5 %, never more than 5 % under.").AppendLine();
        md.AppendLine("| shape | strategy | plan | predicted (MiB) | measured (MiB) | error | within target |");
        md.AppendLine("|---|---|---|---:|---:|---:|---|");
        foreach (var c in cells.OrderBy(c => c.Strategy, StringComparer.Ordinal).ThenBy(c => c.Model).ThenBy(c => c.Batch).ThenBy(c => c.Seq))
        {
            string ok = c.ErrorPercent is double e ? (Math.Abs(e) <= 5 ? "yes" : "**no**") : $"failed: {c.Failure}";
            md.AppendLine(string.Create(CultureInfo.InvariantCulture,
                $"| {c.Shape} | {c.Strategy} | {c.Summary.Replace("|", "\\|")} | {c.PredictedMiB:N1} | {c.MeasuredMiB:N1} | {(c.ErrorPercent is double x ? $"{x:+0.0;-0.0}%" : "n/a")} | {ok} |"));
        }
        File.WriteAllText(prefix + ".md", md.ToString());
        File.WriteAllText(prefix + ".json", new JsonObject { ["label"] = label, ["benches"] = raw }.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
        Plot plot = Chart(cells, label);
        File.WriteAllText(prefix + ".svg", plot.GetSvgXml(1100, 560));
        File.WriteAllBytes(prefix + ".png", plot.GetImageBytes(1100, 560, ImageFormat.Png));
        Console.WriteLine($"{cells.Count} cells from {raw.Count} shapes: {prefix}.md, .json, .png, .svg");
        return 0;
    }

    private static Plot Chart(List<Cell> cells, string label)
    {
        var plot = new Plot();
        string[] strategies = cells.Select(c => c.Strategy).Distinct().Order(StringComparer.Ordinal).ToArray();
        string[] shapes = cells.Select(c => c.Shape).Distinct().ToArray();
        var palette = new ScottPlot.Palettes.Category10();
        for (int k = 0; k < shapes.Length; k++)
        {
            var mine = cells.Where(c => c.Shape == shapes[k] && c.ErrorPercent is not null).ToList();
            if (mine.Count == 0) continue;
            double offset = (k - (shapes.Length - 1) / 2.0) * 0.6 / Math.Max(1, shapes.Length);
            var xs = mine.Select(c => Array.IndexOf(strategies, c.Strategy) + offset).ToArray();
            var ys = mine.Select(c => c.ErrorPercent!.Value).ToArray();
            var sc = plot.Add.ScatterPoints(xs, ys, palette.GetColor(k));
            sc.MarkerSize = 8;
            sc.LegendText = shapes[k];
        }
        var band = plot.Add.VerticalSpan(-5, 5);
        band.FillColor = Colors.Green.WithAlpha(0.12);
        plot.Add.HorizontalLine(0, 1, Colors.Gray);
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(
            Enumerable.Range(0, strategies.Length).Select(i => (double)i).ToArray(), strategies);
        plot.Axes.Bottom.TickLabelStyle.Rotation = 45;
        plot.Axes.Bottom.TickLabelStyle.Alignment = Alignment.MiddleLeft;
        plot.YLabel("error of the plan (%), (predicted − measured) / measured");
        plot.Title(label.Length > 90 ? label[..90] : label);
        plot.ShowLegend(Alignment.UpperRight);
        return plot;
    }

    private static string ShortModel(string model) => Path.GetFileName(model.StartsWith("synthetic:", StringComparison.Ordinal) ? model["synthetic:".Length..] : model);
}
