using static TorchSharp.torch;

namespace QuantPeft.Trainers.Recipes.Components;

/// <summary>
/// On the CPU under gradient checkpointing, adapter gradients are allocated once, right after the optimizer, and
/// zeroed in place after each step rather than dropped.
/// </summary>
/// <remarks>
/// Dropped, every step's backward allocates them again (f32, 0.5–30 MiB each, in the heap arenas) between the
/// recomputed blocks' transients, and each one that lands past a transient's hole pins the arena above it: on the
/// Llama-2-70B QLoRAM step (seq 512) the arenas grew 5.35 GB for a 2.8 GB rise in live tensors, 3.17 GB once kept
/// (perf/results/qloram-70b-cpu.md). Without checkpointing backward only frees activations, the gradients fill their
/// holes, and kept gradients would only be alive earlier: +27 MiB of live peak on the TinyLlama QLoRA step for no
/// change in what the arenas keep (bench-memory-cpu.md). The planner prices these gradients for the whole backward
/// either way.
/// </remarks>
public sealed class KeptGradients : IRecipeComponent
{
    /// <inheritdoc />
    public void AfterSetup(RecipeRun run)
    {
        run.KeepsGradients = true;
        foreach (var (_, p) in run.Trainable) p.grad = zeros_like(p).DetachFromDisposeScope();
    }
}
