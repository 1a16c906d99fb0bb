using QuantPeft.Trainers.Adapters;
using QuantPeft.Trainers.Adapters.Methods;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Recipes.Components;

/// <summary>
/// The frozen tensors every adapted projection shares (VeRA's random matrices, RandLoRA's random bases), for any method
/// whose descriptor has shared state: built from the seed once the model is loaded, saved with the adapter and copied
/// back in, key by key, when one is loaded.
/// </summary>
public sealed class SharedAdapterBases : IRecipeComponent
{
    /// <summary>The shared state (after the load; null once the run is freed).</summary>
    public ISharedAdapterState? State { get; private set; }

    /// <inheritdoc />
    public void AfterLoad(RecipeRun run)
    {
        var descriptor = AdapterRegistry.Of(run.Options.Method);
        State = descriptor.CreateShared(run.Model, run.Targets, run.Options.Rank, run.Options.Seed);
    }

    /// <inheritdoc />
    public void OnAdapterLoad(RecipeRun run, Func<string, Tensor> get, string origin)
    {
        foreach (var (key, mine) in State!.Tensors)
        {
            using var saved = get(key);
            if (!saved.shape.SequenceEqual(mine.shape))
                throw new RecipeException($"{origin}: '{key}' has shape [{string.Join(", ", saved.shape)}], this model needs [{string.Join(", ", mine.shape)}]");
            using (no_grad())
                mine.copy_(saved);
        }
    }

    /// <inheritdoc />
    public void OnDispose(RecipeRun run)
    {
        State?.Dispose();
        State = null;
    }
}
