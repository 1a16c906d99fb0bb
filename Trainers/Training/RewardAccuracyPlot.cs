using QuantPeft.Formats;
using QuantPeft.Trainers.Data;
using ScottPlot;

namespace QuantPeft.Trainers.Training;

/// <summary>Draws the reward accuracy of a preference run (train steps and held-out evaluations) as a PNG, written atomically.</summary>
public static class RewardAccuracyPlot
{
    /// <summary>Plots the preference lines of <paramref name="log"/> into <paramref name="pngPath"/>; returns false (and writes nothing) when it has none.</summary>
    public static bool Write(string pngPath, MetricsLog log, string title = "reward accuracy", int width = 900, int height = 540)
    {
        var train = log.Train.Where(m => m.Preference is not null && double.IsFinite(m.Preference.Accuracy)).ToList();
        var eval = log.Eval.Where(m => m.Preference is not null && double.IsFinite(m.Preference.Accuracy)).ToList();
        if (train.Count == 0 && eval.Count == 0) return false;
        var plot = new Plot();
        if (train.Count > 0)
        {
            var s = plot.Add.Scatter(train.Select(m => (double)m.Step).ToArray(), train.Select(m => 100 * m.Preference!.Accuracy).ToArray());
            s.LegendText = "train (per step)";
            s.MarkerSize = 0;
            s.LineWidth = 1;
        }
        if (eval.Count > 0)
        {
            var s = plot.Add.Scatter(eval.Select(m => (double)m.Step).ToArray(), eval.Select(m => 100 * m.Preference!.Accuracy).ToArray());
            s.LegendText = "held-out pairs";
            s.MarkerSize = 7;
            s.LineWidth = 2;
        }
        plot.Axes.SetLimitsY(0, 102);
        plot.Title(title);
        plot.XLabel("optimizer step");
        plot.YLabel("pairs with chosen reward > rejected (%)");
        plot.ShowLegend(Alignment.LowerRight);
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(pngPath))!);
        AtomicFile.WriteAllBytes(pngPath, plot.GetImageBytes(width, height, ImageFormat.Png));
        return true;
    }
}
