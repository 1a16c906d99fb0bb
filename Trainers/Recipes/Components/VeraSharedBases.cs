using QuantPeft.Trainers.Adapters;
using QuantPeft.Trainers.Adapters.Methods;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Recipes.Components;

/// <summary>
/// VeRA's frozen random matrices A and B, shared by every adapted projection and sized for the largest one; they are
/// built from the seed once the model is loaded, saved with the adapter and copied back in when one is loaded.
/// </summary>
public sealed class VeraSharedBases : IRecipeComponent
{
    /// <summary>The shared matrices (after the load; null once the run is freed).</summary>
    public VeraSharedMatrices? Matrices { get; private set; }

    /// <inheritdoc />
    public void AfterLoad(RecipeRun run)
    {
        Matrices = (VeraSharedMatrices?)AdapterRegistry.Of(run.Options.Method).CreateShared(run.Model, run.Targets, run.Options.Rank, run.Options.Seed);
    }

    /// <inheritdoc />
    public void OnAdapterLoad(RecipeRun run, Func<string, Tensor> get, string origin)
    {
        var vera = Matrices!;
        using var a = get(RunAdapterFormats.VeraAKey);
        using var b = get(RunAdapterFormats.VeraBKey);
        if (!a.shape.SequenceEqual(vera.A.shape) || !b.shape.SequenceEqual(vera.B.shape))
            throw new RecipeException($"{origin}: vera_A/vera_B have shapes [{string.Join(", ", a.shape)}]/[{string.Join(", ", b.shape)}], this model needs [{string.Join(", ", vera.A.shape)}]/[{string.Join(", ", vera.B.shape)}]");
        using (no_grad())
        {
            vera.A.copy_(a);
            vera.B.copy_(b);
        }
    }

    /// <inheritdoc />
    public void OnDispose(RecipeRun run)
    {
        Matrices?.Dispose();
        Matrices = null;
    }
}
