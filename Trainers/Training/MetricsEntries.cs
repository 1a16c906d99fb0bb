namespace QuantPeft.Trainers.Training;

/// <summary>One logged training step (a line of <c>metrics.jsonl</c>).</summary>
/// <param name="Step">Optimizer step (1-based: the number of updates done).</param>
/// <param name="Loss">Mean training loss over the logged step(s).</param>
/// <param name="LearningRate">Learning rate used (<c>lr</c>).</param>
/// <param name="TokensPerSecond">Input tokens processed per second of wall time (<c>tokens_per_s</c>).</param>
/// <param name="PeakBytes">Peak device (or host) memory measured so far, in bytes (<c>peak_bytes</c>).</param>
public sealed record TrainMetrics(long Step, double Loss, double LearningRate, double TokensPerSecond, long PeakBytes)
{
    /// <summary>Global gradient norm before clipping (<c>grad_norm</c>), if measured.</summary>
    public double? GradNorm { get; init; }

    /// <summary>Seconds since training began (<c>elapsed_s</c>), if measured.</summary>
    public double? ElapsedSeconds { get; init; }

    /// <summary>Rewards, margin and accuracy of a preference step (DPO, ORPO); null for SFT.</summary>
    public PreferenceMetrics? Preference { get; init; }
    /// <summary>Which memory <see cref="PeakBytes"/> shows (<c>peak_source</c>): <c>cpu RSS</c>, or a CUDA device's used memory.</summary>
    public string? PeakSource { get; init; }
}

/// <summary>One evaluation (a line of <c>metrics.jsonl</c>).</summary>
/// <param name="Step">Optimizer step after which the evaluation ran.</param>
/// <param name="EvalLoss">Mean loss over all eval targets (<c>eval_loss</c>).</param>
public sealed record EvalMetrics(long Step, double EvalLoss)
{
    /// <summary><c>exp(eval_loss)</c> (<c>eval_perplexity</c>).</summary>
    public double EvalPerplexity => Math.Exp(EvalLoss);

    /// <summary>Exact-match accuracy of generated answers (<c>eval_exact_match</c>), if measured.</summary>
    public double? ExactMatch { get; init; }

    /// <summary>Rewards, margin and accuracy on the held-out pairs (preference runs; <c>eval_</c>-prefixed keys); null for SFT.</summary>
    public PreferenceMetrics? Preference { get; init; }
}
