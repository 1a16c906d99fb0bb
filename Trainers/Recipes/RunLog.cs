using System.Text.Json;
using System.Text.Json.Nodes;
using QuantPeft.Trainers.Data;

namespace QuantPeft.Trainers.Recipes;

/// <summary>
/// The run folder's <c>metrics.jsonl</c> (one JSON object per line, appended and flushed as the run goes, so
/// an interrupted run keeps what it logged) and the <c>loss.png</c> chart drawn from it at the end.
/// </summary>
public sealed class RunLog : IDisposable
{
    private readonly StreamWriter _writer;
    private readonly List<(double Step, double Loss)> _train = [];
    private readonly List<(double Step, double Loss)> _eval = [];

    /// <summary>Creates (truncates) <c>metrics.jsonl</c> in <paramref name="folder"/>.</summary>
    public RunLog(string folder)
    {
        Directory.CreateDirectory(folder);
        MetricsPath = Path.Combine(folder, "metrics.jsonl");
        _writer = new StreamWriter(MetricsPath, append: false) { AutoFlush = true };
    }

    /// <summary>Path of <c>metrics.jsonl</c>.</summary>
    public string MetricsPath { get; }

    /// <summary>Appends one record; <c>train_loss</c> and <c>eval_loss</c> also feed the chart.</summary>
    public void Write(JsonObject record)
    {
        _writer.WriteLine(record.ToJsonString(new JsonSerializerOptions { WriteIndented = false }));
        double step = record["step"] is JsonNode s ? Number(s) : 0;
        if (record["train_loss"] is JsonNode t) _train.Add((step, Number(t)));
        if (record["eval_loss"] is JsonNode e) _eval.Add((step, Number(e)));
    }

    /// <summary>Draws train and eval loss against the step into <paramref name="path"/> (written atomically).</summary>
    public void SaveLossChart(string path)
    {
        var plot = new ScottPlot.Plot();
        if (_train.Count > 0)
            plot.Add.Scatter(_train.Select(p => p.Step).ToArray(), _train.Select(p => p.Loss).ToArray()).LegendText = "train loss";
        if (_eval.Count > 0)
            plot.Add.Scatter(_eval.Select(p => p.Step).ToArray(), _eval.Select(p => p.Loss).ToArray()).LegendText = "eval loss";
        plot.XLabel("optimizer step");
        plot.YLabel("cross-entropy (nats / token)");
        plot.ShowLegend();
        byte[] png = plot.GetImageBytes(720, 420, ScottPlot.ImageFormat.Png);
        AtomicFile.WriteAllBytes(path, png);
    }

    // JsonValue keeps the CLR type it was built from (int steps, double losses); the text form reads back as either.
    private static double Number(JsonNode node) => double.Parse(node.ToJsonString(), System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>Closes the metrics file.</summary>
    public void Dispose() => _writer.Dispose();
}
