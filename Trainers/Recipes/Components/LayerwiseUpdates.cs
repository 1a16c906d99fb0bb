using QuantPeft.Optimizers.InBackward;
using QuantPeft.Trainers.Strategies;

namespace QuantPeft.Trainers.Recipes.Components;

/// <summary>
/// Layer-wise updates (optimizer in backward): each projection is stepped as soon as its gradient is ready, so the
/// whole model's gradients never exist at once. The step then updates only what still has a gradient.
/// </summary>
public sealed class LayerwiseUpdates : IRecipeComponent
{
    /// <summary>The hook the projections call from backward; null before the optimizer exists.</summary>
    public OptimizerInBackward? Hook { get; private set; }

    // There is no global norm to clip by: the projections already moved inside backward (galore-torch's layer-wise
    // mode does not clip either).
    /// <inheritdoc />
    public void AfterSetup(RecipeRun run)
    {
        Hook = FullParameterTraining.AttachInBackward(run.Model, run.Optimizer!);
        run.ClipsGradients = false;
    }
}
