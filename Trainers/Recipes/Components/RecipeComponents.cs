using QuantPeft.Memory.Planning;
using QuantPeft.Trainers.Adapters.Methods;
using QuantPeft.Trainers.Strategies;

namespace QuantPeft.Trainers.Recipes.Components;

/// <summary>Which components a run installs, decided once from its options, in the order their hooks are called.</summary>
public static class RecipeComponents
{
    /// <summary>
    /// The components <paramref name="options"/> ask for. A run in host memory (<paramref name="host"/>) always trims the
    /// C heap; a device run with no strategy option installs none.
    /// </summary>
    /// <remarks>
    /// The order is the order of every hook: heap trimming records its baseline before the shared bases (VeRA, RandLoRA) are allocated,
    /// and the heap guard's limit is measured before kept gradients are allocated.
    /// </remarks>
    public static IReadOnlyList<IRecipeComponent> Select(FinetuneOptions options, bool host)
    {
        var components = new List<IRecipeComponent>();
        if (options.Method == TrainingMethod.Loram) components.Add(new LoramStructuredPruning());
        if (host) components.Add(new HeapTrimming(options.HeapGuard));
        if (AdapterRegistry.Has(options.Method) && AdapterRegistry.Of(options.Method).HasSharedState) components.Add(new SharedAdapterBases());
        if (AdapterRegistry.Has(options.Method) && AdapterRegistry.Of(options.Method).DataInit is not null) components.Add(new DataDrivenInitialisation());
        if (options.Method == TrainingMethod.Lisa) components.Add(new LisaLayerSampling());
        if (options.Layerwise) components.Add(new LayerwiseUpdates());
        if (host && options.Checkpointing && !FullParameterTraining.TrainsBaseWeights(options.Method)) components.Add(new KeptGradients());
        if (AdapterRegistry.Has(options.Method) && AdapterRegistry.Of(options.Method).RecipeComponent(options) is { } ofMethod) components.Add(ofMethod);
        return components;
    }
}
