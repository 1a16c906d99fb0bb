using QuantPeft.Trainers.Training;

namespace QuantPeft.Trainers.Recipes;

/// <summary>Loss, perplexity and exact match at one point of a run.</summary>
/// <param name="Loss">Mean cross-entropy per target token on the eval rows.</param>
/// <param name="Perplexity">exp(Loss).</param>
/// <param name="ExactMatch">Share of eval prompts answered exactly (null when the eval set has no prompt/completion records).</param>
public sealed record EvalResult(double Loss, double Perplexity, double? ExactMatch)
{
    /// <summary>Rewards, margin and accuracy on the held-out pairs of a preference run (then Loss is the preference loss); null for SFT.</summary>
    public PreferenceMetrics? Preference { get; init; }
}
