namespace QuantPeft.Trainers.Training;

/// <summary>
/// Learning rate: linear warmup to the peak, then cosine decay to <c>peak × minRatio</c>.
/// </summary>
/// <remarks>
/// For optimizer step s (0-based), with W warmup steps and N total steps:
/// <list type="bullet">
/// <item>s &lt; W: <c>peak × (s + 1) / W</c> — the first step already moves, the last warmup step reaches the peak;</item>
/// <item>W ≤ s &lt; N: <c>min + (peak − min) × ½(1 + cos(π p))</c> with <c>p = (s − W) / max(1, N − W − 1)</c>, so step W is at the peak and the last step N − 1 is exactly at the minimum;</item>
/// <item>s ≥ N: <c>min</c>.</item>
/// </list>
/// </remarks>
public sealed class WarmupCosineSchedule
{
    /// <summary>Creates the schedule.</summary>
    /// <param name="peakLr">Learning rate at the end of warmup.</param>
    /// <param name="warmupSteps">W ≥ 0.</param>
    /// <param name="totalSteps">N &gt; W.</param>
    /// <param name="minRatio">Final learning rate as a fraction of the peak, in [0, 1].</param>
    /// <exception cref="TrainingOptionsException">An argument is out of range.</exception>
    public WarmupCosineSchedule(double peakLr, int warmupSteps, int totalSteps, double minRatio = 0.1)
    {
        if (!(peakLr > 0) || double.IsInfinity(peakLr))
            throw new TrainingOptionsException($"learning rate must be a positive number; found {peakLr}");
        if (warmupSteps < 0)
            throw new TrainingOptionsException($"warmup steps must be at least 0; found {warmupSteps}");
        if (totalSteps <= warmupSteps)
            throw new TrainingOptionsException($"total steps ({totalSteps}) must exceed warmup steps ({warmupSteps})");
        if (!(minRatio >= 0 && minRatio <= 1))
            throw new TrainingOptionsException($"minimum learning-rate ratio must be in [0, 1]; found {minRatio}");
        PeakLr = peakLr;
        WarmupSteps = warmupSteps;
        TotalSteps = totalSteps;
        MinRatio = minRatio;
    }

    /// <summary>Peak learning rate.</summary>
    public double PeakLr { get; }

    /// <summary>Warmup steps W.</summary>
    public int WarmupSteps { get; }

    /// <summary>Total steps N.</summary>
    public int TotalSteps { get; }

    /// <summary>Final learning rate as a fraction of the peak.</summary>
    public double MinRatio { get; }

    /// <summary>The learning rate of optimizer step <paramref name="step"/> (0-based).</summary>
    public double At(int step)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(step);
        double min = PeakLr * MinRatio;
        if (step < WarmupSteps) return PeakLr * (step + 1) / WarmupSteps;
        if (step >= TotalSteps) return min;
        double p = (double)(step - WarmupSteps) / Math.Max(1, TotalSteps - WarmupSteps - 1);
        return min + (PeakLr - min) * 0.5 * (1 + Math.Cos(Math.PI * p));
    }
}
