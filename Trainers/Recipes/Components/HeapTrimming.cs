using QuantPeft.Memory.Planning;
using QuantPeft.Memory.Probes;

namespace QuantPeft.Trainers.Recipes.Components;

/// <summary>
/// On the CPU, hands freed C-heap pages back at the points of a step where glibc would otherwise keep them resident
/// beside the live tensors, and (with <see cref="FinetuneOptions.HeapGuard"/>) bounds what the heap keeps between
/// decoder blocks. Trimming returns memory only; it never changes a number the run computes.
/// </summary>
/// <remarks>
/// <para>After the load: the loader trims every 128 MiB streamed, but the last tensors' staging blocks are still kept,
/// and training would otherwise start on top of them (up to the largest tensor's worth, freed but resident).</para>
/// <para>After each forward: the forward interleaves each block's short-lived tensors (decoded slabs, f32 adapter
/// copies, attention and MLP temporaries, 1–32 MiB each at a few hundred tokens) with the activations that survive to
/// backward; the freed ones stay resident as holes between kept tensors, and backward then grows the heap above them.
/// On the TinyLlama QLoRA step at batch 2 × seq 128 that was 494 MiB resident above the live tensors' 1,645 MiB
/// (perf/results/bench-memory-matrix.md). One trim per micro-batch, where a trim after every block cost 40 % of the
/// step (bench-memory-cpu.md).</para>
/// <para>Before the update: an optimizer step over a tensor whose f32 copies are above glibc's 32 MiB mmap ceiling
/// gets those copies as fresh mappings, which cannot reuse the arenas' freed blocks; forward and backward (and under
/// layer-wise updates every in-backward update) leave such blocks freed but resident beside the step's copies:
/// ≈ 930 MiB beside a 3.6 GB live peak for 8-bit GaLore layer-wise on the TinyLlama shape (bench-memory-cpu.md).
/// Adapter-only steps are small, so there the trim would only cost page faults.</para>
/// </remarks>
public sealed class HeapTrimming(bool guard) : IRecipeComponent
{
    /// <summary>
    /// Environment variable that turns the CPU heap guard between decoder blocks off (<c>off</c>), for comparing its
    /// speed; the measured peak then includes whatever freed memory glibc keeps. Pinned heap thresholds
    /// (<c>QPEFT_NATIVE_HEAP=pinned</c>) make the guard unnecessary, so it is off under them too.
    /// </summary>
    public const string GuardVariable = "QPEFT_HEAP_GUARD";

    private const long StepTrimElements = (32L << 20) / 4;
    private bool _trimBeforeUpdate;

    /// <inheritdoc />
    public void AfterLoad(RecipeRun run) => NativeHeap.RecordResidentBaseline();   // trims, then notes what is resident outside the heap

    // The guard is set before the first evaluation: an evaluation's forward churns the same per-block transients as training's.
    /// <inheritdoc />
    public void AfterSetup(RecipeRun run)
    {
        _trimBeforeUpdate = run.Trainable.Any(p => p.Param.numel() >= StepTrimElements);
        if (guard && !NativeHeap.IsConfigured && Environment.GetEnvironmentVariable(GuardVariable) != "off")
            run.Model.Decoder.HeapRetentionLimit = RetentionLimit();
    }

    /// <inheritdoc />
    public void AfterForward(RecipeRun run) => NativeHeap.Trim();

    /// <inheritdoc />
    public void BeforeUpdate(RecipeRun run)
    {
        if (_trimBeforeUpdate) NativeHeap.Trim();
    }

    // The freed bytes the C heap may keep between decoder blocks: the planner's fragmentation share of what is live once
    // the model and adapters are set up, so that what the heap keeps above the live tensors stays inside the share the
    // plan prices of the (larger) step peak; at least 16 MiB, below which a trim would cost more page faults than it saves.
    private static long RetentionLimit() =>
        Math.Max(16L << 20, (long)((NativeHeap.Read()?.LiveBytes ?? 0) * Budget.DefaultFragmentation));
}
