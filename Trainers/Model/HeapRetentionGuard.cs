using QuantPeft.Memory.Probes;
using static TorchSharp.torch;
using static TorchSharp.torch.autograd;

namespace QuantPeft.Trainers.Model;

/// <summary>
/// An identity autograd node placed between decoder blocks on the CPU that bounds the freed memory the C heap keeps
/// resident. libtorch's CPU allocator is <c>malloc</c>; forward and backward interleave short-lived tensors with the
/// activations kept for backward, so glibc's arenas keep freed pages between live blocks, and the resident set grows
/// above the live tensors by an amount that depends on the order of frees, not on the plan. At each block boundary,
/// forward and backward, the node returns the arenas' free pages to the kernel once those pages pass the limit
/// (<see cref="NativeHeap.TrimIfRetainedAbove"/>). The resident set then stays within the live tensors plus the limit
/// plus one block's transients, which the planner prices; below the limit nothing is trimmed and nothing is paid.
/// </summary>
internal sealed class HeapRetentionGuard : SingleTensorFunction<HeapRetentionGuard>
{
    private const string LimitKey = "limit";
    private static long _backwardCalls;

    /// <summary>How many times a guard has run in backward in this process (tests check the node takes part).</summary>
    internal static long BackwardCalls => Interlocked.Read(ref _backwardCalls);

    /// <inheritdoc/>
    public override string Name => nameof(HeapRetentionGuard);

    /// <summary>Passes <paramref name="x"/> through, trimming the heap here in forward and again in backward.</summary>
    public static Tensor Apply(Tensor x, long limitBytes)
    {
        NativeHeap.TrimIfRetainedAbove(limitBytes);
        // Only a tensor in the graph gets a backward call; before the first trainable block there is none to guard.
        return x.requires_grad ? apply(x, limitBytes) : x;
    }

    /// <inheritdoc/>
    public override Tensor forward(AutogradContext ctx, params object[] vars)
    {
        ctx.save_data(LimitKey, (long)vars[1]);
        return ((Tensor)vars[0]).detach();
    }

    /// <inheritdoc/>
    public override List<Tensor> backward(AutogradContext ctx, Tensor gradOutput)
    {
        Interlocked.Increment(ref _backwardCalls);
        // The incoming gradient's handle sits in the trainer's scope until backward ends; handed back as it is, it pinned
        // one [B, T, H] gradient per block to the end of backward (8 MiB a block on TinyLlama at 2,048 tokens).
        QuantPeft.Quant.Torch.BackwardHandles.ReleaseEarlier();
        NativeHeap.TrimIfRetainedAbove((long)ctx.get_data(LimitKey));
        return QuantPeft.Quant.Torch.BackwardHandles.Returning([gradOutput, null!]);
    }
}
