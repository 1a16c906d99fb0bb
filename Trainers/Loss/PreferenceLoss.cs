using QuantPeft.Quant.Torch;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Loss;

/// <summary>Which DPO-family loss turns the log-ratio margin into a loss.</summary>
public enum DpoLossKind
{
    /// <summary>DPO (Rafailov et al. 2023, eq. 7): −log σ(β·h), with optional label smoothing (conservative DPO).</summary>
    Sigmoid,
    /// <summary>IPO (Azar et al. 2023): (h − 1/(2β))², a squared loss that does not push the margin to infinity.</summary>
    Ipo,
}

/// <summary>Per-pair loss and the implicit rewards of one batch of preference pairs.</summary>
/// <param name="Loss">(B) loss of each pair.</param>
/// <param name="RewardsChosen">(B) reward of each chosen answer (DPO: β·(log π − log π_ref); ORPO: λ·mean log π).</param>
/// <param name="RewardsRejected">(B) reward of each rejected answer, likewise.</param>
public sealed record PreferenceTerms(Tensor Loss, Tensor RewardsChosen, Tensor RewardsRejected) : IDisposable
{
    /// <inheritdoc />
    public void Dispose()
    {
        Loss.Dispose();
        RewardsChosen.Dispose();
        RewardsRejected.Dispose();
    }
}

/// <summary>
/// The preference losses on sequence log-probabilities. With h = (log π(y_w) − log π_ref(y_w)) − (log π(y_l) − log π_ref(y_l))
/// (sums over the answer's tokens):
/// <list type="bullet">
/// <item>DPO: L = −(1 − ε) log σ(βh) − ε log σ(−βh); at h = 0 (policy = reference) it is ln 2 for every ε, and
/// ∂L/∂h = −β[(1 − ε) σ(−βh) − ε σ(βh)].</item>
/// <item>IPO: L = (h − 1/(2β))².</item>
/// <item>ORPO (Hong et al. 2024, eq. 6–7), on length-normalised log-likelihoods ℓ = mean log π over the answer's tokens:
/// odds(y) = P/(1 − P) with P = exp ℓ, L = −ℓ_w + λ · (−log σ(log odds(y_w) − log odds(y_l))); no reference.</item>
/// </list>
/// </summary>
public static class PreferenceLoss
{
    /// <summary>DPO or IPO per pair, from policy and reference sums of log-probabilities (all (B) float32).</summary>
    public static PreferenceTerms Dpo(Tensor policyChosen, Tensor policyRejected, Tensor referenceChosen, Tensor referenceRejected,
        double beta, double labelSmoothing = 0, DpoLossKind kind = DpoLossKind.Sigmoid)
    {
        using var scope = NewDisposeScope();
        var chosenRatio = policyChosen.Add(referenceChosen, -1.0);
        var rejectedRatio = policyRejected.Add(referenceRejected, -1.0);
        var h = chosenRatio.Add(rejectedRatio, -1.0);
        Tensor loss;
        if (kind == DpoLossKind.Ipo)
            loss = h.Sub(1.0 / (2 * beta)).Square();
        else
        {
            var z = h.Mul(beta);
            loss = nn.functional.logsigmoid(z).Mul(-(1 - labelSmoothing))
                .Add(nn.functional.logsigmoid(z.neg()), -labelSmoothing);
        }
        var rewardsChosen = chosenRatio.detach().Mul(beta);
        var rewardsRejected = rejectedRatio.detach().Mul(beta);
        return new PreferenceTerms(loss.MoveToOuterDisposeScope(), rewardsChosen.MoveToOuterDisposeScope(), rewardsRejected.MoveToOuterDisposeScope());
    }

    /// <summary>ORPO per pair, from the mean log-probability per answer token of each answer (both (B) float32).</summary>
    public static PreferenceTerms Orpo(Tensor meanChosen, Tensor meanRejected, double lambda)
    {
        using var scope = NewDisposeScope();
        var ratio = LogOdds(meanChosen).Add(LogOdds(meanRejected), -1.0);
        var loss = meanChosen.neg().Add(nn.functional.logsigmoid(ratio), -lambda);
        return new PreferenceTerms(loss.MoveToOuterDisposeScope(), meanChosen.detach().Mul(lambda).MoveToOuterDisposeScope(),
            meanRejected.detach().Mul(lambda).MoveToOuterDisposeScope());
    }

    /// <summary>ORPO's odds-ratio term alone, −log σ(log odds(y_w) − log odds(y_l)), per pair.</summary>
    public static Tensor OddsRatioTerm(Tensor meanChosen, Tensor meanRejected)
    {
        using var scope = NewDisposeScope();
        var ratio = LogOdds(meanChosen).Add(LogOdds(meanRejected), -1.0);
        return nn.functional.logsigmoid(ratio).neg().MoveToOuterDisposeScope();
    }

    // log(P / (1 − P)) = ℓ − log(1 − exp ℓ) for ℓ = log P < 0. A mean log-probability of exactly 0 (every token
    // certain) would make the odds infinite; ℓ is capped just below 0 so the loss stays finite.
    private static Tensor LogOdds(Tensor meanLogProb)
    {
        var l = meanLogProb.Clamp(-1e30, -1e-7);
        return l.Add(l.exp().neg().log1p(), -1.0);
    }
}
