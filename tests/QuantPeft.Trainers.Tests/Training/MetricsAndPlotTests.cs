using System.Text.Json;
using QuantPeft.Trainers.Training;

namespace QuantPeft.Trainers.Tests.Training;

public class MetricsAndPlotTests
{
    [Fact]
    public void EachEntryIsOneCompleteJsonLineWithTheDocumentedKeys()
    {
        using var dir = new TempDir();
        string path = dir.File("metrics.jsonl");
        using (var w = new MetricsWriter(path))
        {
            w.Write(new TrainMetrics(1, 2.5, 1e-4, 1234.5, 1L << 33) { GradNorm = 0.75 });
            // Each line is on disk as soon as it is written, before the writer closes.
            Assert.Single(File.ReadAllLines(path));
            w.Write(new EvalMetrics(1, Math.Log(4)) { ExactMatch = 0.25 });
            w.Write(new TrainMetrics(2, double.NaN, 2e-4, 1000, 42));
        }
        string text = File.ReadAllText(path);
        Assert.EndsWith("\n", text);
        string[] lines = text.TrimEnd('\n').Split('\n');
        Assert.Equal(3, lines.Length);

        using var train = JsonDocument.Parse(lines[0]);
        Assert.Equal(1, train.RootElement.GetProperty("step").GetInt64());
        Assert.Equal(2.5, train.RootElement.GetProperty("loss").GetDouble());
        Assert.Equal(1e-4, train.RootElement.GetProperty("lr").GetDouble());
        Assert.Equal(1234.5, train.RootElement.GetProperty("tokens_per_s").GetDouble());
        Assert.Equal(8589934592, train.RootElement.GetProperty("peak_bytes").GetInt64());
        Assert.Equal(0.75, train.RootElement.GetProperty("grad_norm").GetDouble());

        using var eval = JsonDocument.Parse(lines[1]);
        Assert.Equal(Math.Log(4), eval.RootElement.GetProperty("eval_loss").GetDouble(), 1e-12);
        Assert.Equal(4.0, eval.RootElement.GetProperty("eval_perplexity").GetDouble(), 1e-12);
        Assert.Equal(0.25, eval.RootElement.GetProperty("eval_exact_match").GetDouble());

        using var nan = JsonDocument.Parse(lines[2]);
        Assert.Equal(JsonValueKind.Null, nan.RootElement.GetProperty("loss").ValueKind);
    }

    [Fact]
    public void AppendKeepsEarlierLinesAndTheLogReadsBack()
    {
        using var dir = new TempDir();
        string path = dir.File("metrics.jsonl");
        using (var w = new MetricsWriter(path)) w.Write(new TrainMetrics(1, 3.0, 1e-3, 10, 100));
        using (var w = new MetricsWriter(path, append: true)) w.Write(new EvalMetrics(1, 2.0));
        var log = MetricsLog.Read(path);
        Assert.Equal(new TrainMetrics(1, 3.0, 1e-3, 10, 100), Assert.Single(log.Train));
        Assert.Equal(new EvalMetrics(1, 2.0), Assert.Single(log.Eval));
    }

    [Fact]
    public void BadMetricsLineNamesFileAndLine()
    {
        using var dir = new TempDir();
        string path = dir.Write("metrics.jsonl", "{\"step\": 1, \"eval_loss\": 2.0}\n{\"loss\": 1.0}\n");
        var e = Assert.Throws<MetricsFormatException>(() => MetricsLog.Read(path));
        Assert.Equal(2, e.Line);
        Assert.Contains(path, e.Message);
        Assert.Contains(dir.File("none.jsonl"), Assert.Throws<MetricsFormatException>(() => MetricsLog.Read(dir.File("none.jsonl"))).Message);
    }

    [Fact]
    public void LossPlotIsANonTrivialPng()
    {
        using var dir = new TempDir();
        string metrics = dir.File("metrics.jsonl");
        using (var w = new MetricsWriter(metrics))
        {
            for (int s = 1; s <= 100; s++)
            {
                w.Write(new TrainMetrics(s, 3.0 * Math.Exp(-s / 40.0) + 0.5, 1e-3, 1000, 1 << 20));
                if (s % 20 == 0) w.Write(new EvalMetrics(s, 3.2 * Math.Exp(-s / 45.0) + 0.6));
            }
        }
        string png = dir.File("run/loss.png");
        LossCurvePlot.WriteFromMetrics(metrics, png);
        byte[] bytes = File.ReadAllBytes(png);
        Assert.Equal(new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A }, bytes[..8]);
        Assert.True(bytes.Length > 10_000, $"PNG has only {bytes.Length} bytes");
        Assert.False(File.Exists(png + ".qpeft-tmp"));
    }

    [Fact]
    public void RunFolderLayout()
    {
        using var dir = new TempDir();
        var t = new DateTime(2026, 11, 23, 9, 30, 5, DateTimeKind.Utc);
        var a = RunFolder.CreateTimestamped(dir.Path, t);
        var b = RunFolder.CreateTimestamped(dir.Path, t);
        Assert.Equal(Path.Combine(dir.Path, "2026-11-23T09-30-05Z"), a.Root);
        Assert.Equal(Path.Combine(dir.Path, "2026-11-23T09-30-05Z-2"), b.Root);
        Assert.Equal(Path.Combine(a.Root, "plan.json"), a.PlanJson);
        Assert.Equal(Path.Combine(a.Root, "metrics.jsonl"), a.MetricsJsonl);
        Assert.Equal(Path.Combine(a.Root, "loss.png"), a.LossPng);
        Assert.Equal(Path.Combine(a.Root, "report.md"), a.ReportMd);
        Assert.True(Directory.Exists(a.AdapterDirectory));
        File.WriteAllText(a.MetricsJsonl, "");
        var e = Assert.Throws<TrainingOptionsException>(() => RunFolder.Create(a.Root));
        Assert.Contains(a.Root, e.Message);
    }
}
