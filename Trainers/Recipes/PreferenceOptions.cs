using QuantPeft.Trainers.Loss;

namespace QuantPeft.Trainers.Recipes;

/// <summary>What a run optimises (<c>qpeft train --task</c>).</summary>
public enum TrainingTask
{
    /// <summary>Supervised fine-tuning: cross-entropy on the target tokens.</summary>
    Sft,
    /// <summary>Direct Preference Optimization against the reference (the model with its adapters off, or cached).</summary>
    Dpo,
    /// <summary>Odds-Ratio Preference Optimization: SFT on the chosen answer plus λ × the odds-ratio term; no reference.</summary>
    Orpo,
}

/// <summary>The settings of a preference run (<c>--task dpo|orpo</c>); absent for SFT.</summary>
public sealed record PreferenceOptions
{
    /// <summary>DPO or ORPO.</summary>
    public TrainingTask Task { get; init; } = TrainingTask.Dpo;

    /// <summary>DPO's β: how far the policy may move from the reference (<c>--beta</c>).</summary>
    public double Beta { get; init; } = 0.1;

    /// <summary>DPO's label smoothing ε in [0, 0.5): the assumed share of flipped labels (<c>--label-smoothing</c>).</summary>
    public double LabelSmoothing { get; init; }

    /// <summary>DPO's loss: sigmoid (the paper's) or IPO (<c>--dpo-loss</c>).</summary>
    public DpoLossKind Loss { get; init; } = DpoLossKind.Sigmoid;

    /// <summary>ORPO's λ, the weight of the odds-ratio term (<c>--orpo-lambda</c>).</summary>
    public double OrpoLambda { get; init; } = 0.1;

    /// <summary>
    /// Compute every pair's reference log-probabilities once, before the first step, and reuse them
    /// (<c>--reference-cache on</c>) instead of a reference forward in every step.
    /// </summary>
    public bool CacheReference { get; init; }

    /// <summary>Checks ranges; each message names the flag.</summary>
    /// <exception cref="RecipeException">A value is out of range.</exception>
    public void Validate()
    {
        if (!(Beta > 0) || double.IsInfinity(Beta)) throw new RecipeException($"--beta: expected a positive number, found {Beta}");
        if (!(LabelSmoothing >= 0 && LabelSmoothing < 0.5)) throw new RecipeException($"--label-smoothing: expected a value in [0, 0.5), found {LabelSmoothing}");
        if (!(OrpoLambda >= 0) || double.IsInfinity(OrpoLambda)) throw new RecipeException($"--orpo-lambda: expected a non-negative number, found {OrpoLambda}");
        if (Task == TrainingTask.Sft) throw new RecipeException("--task sft has no preference settings");
    }
}
