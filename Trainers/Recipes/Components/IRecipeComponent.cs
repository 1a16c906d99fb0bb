using QuantPeft.Trainers.Model;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Recipes.Components;

/// <summary>
/// A strategy that takes part in a <see cref="FinetuneRecipe"/> run (LISA, LoRAM, layer-wise updates, kept gradients,
/// heap trimming, VeRA's shared matrices). The recipe calls every installed component at each named point of the run,
/// in the order <see cref="RecipeComponents.Select"/> installed them; a component overrides only the hooks it needs.
/// </summary>
/// <remarks>
/// Components act on the run through <see cref="RecipeRun"/>, which the recipe owns: they read its state and change
/// only what it offers to change (the optimizer, whether gradients are clipped or kept), so the recipe stays the one
/// place that says what a step does. A new strategy is one class here plus its line in <see cref="RecipeComponents"/>.
/// </remarks>
public interface IRecipeComponent
{
    /// <summary>Before the checkpoint streams in: may change how the decoder is built (LoRAM's pruned widths).</summary>
    DecoderOptions BeforeLoad(RecipeRun run, DecoderOptions decoder) => decoder;

    /// <summary>After the model is loaded, before adapters are attached or anything is made trainable.</summary>
    void AfterLoad(RecipeRun run) { }

    /// <summary>After the trainable set is fixed, before the recipe builds its optimizer: may install its own (<see cref="RecipeRun.ReplaceOptimizer"/>).</summary>
    void BeforeOptimizer(RecipeRun run) { }

    /// <summary>After the optimizer exists, before a resume and before the first evaluation.</summary>
    void AfterSetup(RecipeRun run) { }

    /// <summary>A resumed run, after the trainable tensors are restored and before the optimizer state is: <paramref name="step"/> steps are done.</summary>
    void OnResume(RecipeRun run, int step) { }

    /// <summary>Before the micro-batches of optimizer step <paramref name="step"/> (0-based).</summary>
    void BeforeStep(RecipeRun run, int step) { }

    /// <summary>Between a training micro-batch's forward and its backward.</summary>
    void AfterForward(RecipeRun run) { }

    /// <summary>After every micro-batch's backward and the clipping, right before the optimizer step.</summary>
    void BeforeUpdate(RecipeRun run) { }

    /// <summary>A saved adapter is being loaded: copy in what the component holds (<paramref name="get"/> throws on a missing key).</summary>
    void OnAdapterLoad(RecipeRun run, Func<string, Tensor> get, string origin) { }

    /// <summary>The recipe frees its run; may be called more than once.</summary>
    void OnDispose(RecipeRun run) { }
}
