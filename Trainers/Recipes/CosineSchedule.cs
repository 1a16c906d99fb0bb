namespace QuantPeft.Trainers.Recipes;

/// <summary>
/// Linear warm-up from 0 to the peak learning rate over <c>warmup</c> steps, then a cosine decay to
/// <c>minRatio · peak</c> at <c>total</c> steps (the schedule of the QLoRA and torchtune recipes).
/// </summary>
/// <param name="PeakLr">Learning rate at the end of warm-up.</param>
/// <param name="WarmupSteps">Optimizer steps of linear warm-up.</param>
/// <param name="TotalSteps">Optimizer steps of the whole run.</param>
/// <param name="MinRatio">Final learning rate as a fraction of the peak.</param>
public sealed record CosineSchedule(double PeakLr, int WarmupSteps, int TotalSteps, double MinRatio = 0.1)
{
    /// <summary>The learning rate for optimizer step <paramref name="step"/> (0-based).</summary>
    public double At(int step)
    {
        if (WarmupSteps > 0 && step < WarmupSteps) return PeakLr * (step + 1) / WarmupSteps;
        int span = Math.Max(1, TotalSteps - WarmupSteps);
        double progress = Math.Clamp((double)(step - WarmupSteps) / span, 0, 1);
        double cosine = 0.5 * (1 + Math.Cos(Math.PI * progress));
        return PeakLr * (MinRatio + (1 - MinRatio) * cosine);
    }
}
