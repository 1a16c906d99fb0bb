using QuantPeft.Trainers.Strategies;

namespace QuantPeft.Trainers.Recipes.Components;

/// <summary>
/// LISA as a recipe component: every <see cref="FinetuneOptions.LisaInterval"/> steps a new set of decoder layers trains
/// and the optimizer is rebuilt over it (<see cref="LisaSchedule"/>), handed to the recipe through
/// <see cref="RecipeRun.ReplaceOptimizer"/>.
/// </summary>
public sealed class LisaLayerSampling : IRecipeComponent
{
    /// <summary>The schedule (active layers, trainable set); null before the recipe's optimizer phase.</summary>
    public LisaSchedule? Schedule { get; private set; }

    /// <inheritdoc />
    public void BeforeOptimizer(RecipeRun run)
    {
        var o = run.Options;
        Schedule = new LisaSchedule(run.Model, new LisaSampler(run.Model.Layers.Count, o.LisaLayers, o.Seed), o.LisaInterval, run.CreateOptimizer);
        Switch(run, 0);
    }

    /// <inheritdoc />
    public void BeforeStep(RecipeRun run, int step) => Switch(run, step);

    // The optimizer of the period the checkpoint's last step belonged to (its draw depends on seed and period alone);
    // the first step after the resume switches periods exactly where the uninterrupted run did.
    /// <inheritdoc />
    public void OnResume(RecipeRun run, int step)
    {
        if (step > 0) Switch(run, step - 1);
    }

    private void Switch(RecipeRun run, int step) =>
        run.ReplaceOptimizer(Schedule!.BeforeStep(step, run.Optimizer), Schedule.Trainable);
}
