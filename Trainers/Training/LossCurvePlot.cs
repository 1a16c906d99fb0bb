using QuantPeft.Formats;
using QuantPeft.Trainers.Data;
using ScottPlot;

namespace QuantPeft.Trainers.Training;

/// <summary>Draws the train and eval loss curves of a run as a PNG (ScottPlot), written atomically.</summary>
public static class LossCurvePlot
{
    /// <summary>Plots <paramref name="log"/> into <paramref name="pngPath"/>; non-finite losses are left out.</summary>
    /// <exception cref="TrainingOptionsException">Width or height is below 100 pixels.</exception>
    public static void Write(string pngPath, MetricsLog log, int width = 900, int height = 540, string title = "loss")
    {
        if (width < 100 || height < 100)
            throw new TrainingOptionsException($"loss plot size must be at least 100 x 100 pixels; found {width} x {height}");
        var plot = new Plot();
        var train = log.Train.Where(m => double.IsFinite(m.Loss)).ToList();
        var eval = log.Eval.Where(m => double.IsFinite(m.EvalLoss)).ToList();
        if (train.Count > 0)
        {
            var s = plot.Add.Scatter(train.Select(m => (double)m.Step).ToArray(), train.Select(m => m.Loss).ToArray());
            s.LegendText = "train";
            s.MarkerSize = train.Count > 50 ? 0 : 4;
        }
        if (eval.Count > 0)
        {
            var s = plot.Add.Scatter(eval.Select(m => (double)m.Step).ToArray(), eval.Select(m => m.EvalLoss).ToArray());
            s.LegendText = "eval";
            s.MarkerSize = 6;
        }
        plot.Title(title);
        plot.XLabel("optimizer step");
        plot.YLabel("loss (nats / token)");
        if (train.Count > 0 || eval.Count > 0) plot.ShowLegend(Alignment.UpperRight);
        byte[] png = plot.GetImageBytes(width, height, ImageFormat.Png);
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(pngPath))!);
        AtomicFile.WriteAllBytes(pngPath, png);
    }

    /// <summary>Reads <paramref name="metricsPath"/> and plots it into <paramref name="pngPath"/>.</summary>
    public static void WriteFromMetrics(string metricsPath, string pngPath) => Write(pngPath, MetricsLog.Read(metricsPath));
}
