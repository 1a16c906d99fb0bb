using QuantPeft.Trainers.Adapters;

namespace QuantPeft.Trainers.Recipes.Components;

/// <summary>
/// DyLoRA's per-step rank: before each optimizer step every <see cref="DyloraLinear"/> of the model trains at the rank
/// b that <see cref="DyloraRanks"/> draws from the run's seed and the step, so a resumed run continues the same draws.
/// </summary>
public sealed class DyloraRankSampling : IRecipeComponent
{
    /// <summary>The rank the last step trained at (0 before the first).</summary>
    public int LastRank { get; private set; }

    /// <inheritdoc />
    public void BeforeStep(RecipeRun run, int step)
    {
        LastRank = DyloraRanks.Sample(run.Options.Seed, step, run.Options.Rank);
        foreach (var module in run.Model.modules())
            if (module is DyloraLinear layer) layer.TrainingRank = LastRank;
    }
}
