using QuantPeft.Trainers.Model;
using QuantPeft.Trainers.Pruning;

namespace QuantPeft.Trainers.Recipes.Components;

/// <summary>
/// LoRAM as a recipe component: the decoder blocks are built narrow and each tensor is cut as it streams in
/// (QLoRAM when the base is 4-bit); the kept units are the <see cref="Pruner"/>'s plan, which the saved adapter is
/// recovered to the unpruned shapes with.
/// </summary>
public sealed class LoramStructuredPruning : IRecipeComponent
{
    /// <summary>The pruner (its <see cref="LoramPruner.Plan"/> is complete once the model is loaded); null before the load.</summary>
    public LoramPruner? Pruner { get; private set; }

    /// <inheritdoc />
    public DecoderOptions BeforeLoad(RecipeRun run, DecoderOptions decoder)
    {
        var o = run.Options;
        Pruner = new LoramPruner(run.Spec, o.Prune, PruningCriteria.Parse(o.PruneCriterion), o.Seed);
        return decoder with { Pruning = Pruner };
    }
}
