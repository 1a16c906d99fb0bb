namespace QuantPeft.Trainers.Training;

/// <summary>
/// Means over the pairs of a step or of an evaluation: the implicit rewards of the chosen and rejected answers,
/// their margin, and the share of pairs whose chosen reward is strictly above the rejected one (a tie, as every
/// pair is at step 0 of DPO, does not count).
/// </summary>
/// <param name="RewardsChosen">Mean reward of the chosen answers (<c>rewards_chosen</c>).</param>
/// <param name="RewardsRejected">Mean reward of the rejected answers (<c>rewards_rejected</c>).</param>
/// <param name="Accuracy">Share of pairs with chosen reward &gt; rejected reward (<c>reward_accuracy</c>).</param>
/// <param name="Pairs">Pairs the means are over.</param>
public sealed record PreferenceMetrics(double RewardsChosen, double RewardsRejected, double Accuracy, int Pairs)
{
    /// <summary>Mean of chosen − rejected reward (<c>reward_margin</c>).</summary>
    public double Margin => RewardsChosen - RewardsRejected;
}
