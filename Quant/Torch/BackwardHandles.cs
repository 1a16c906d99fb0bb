using static TorchSharp.torch;

namespace QuantPeft.Quant.Torch;

/// <summary>
/// Releases the TorchSharp handles that a custom autograd function's backward would otherwise leave alive until the
/// caller's dispose scope ends, which for a training step is the end of the whole backward pass.
/// </summary>
/// <remarks>
/// TorchSharp hands each backward its incoming gradient as a new handle registered in the dispose scope current
/// at the call (the trainer's scope around <c>loss.backward()</c>), and the gradients a backward returns must
/// outlive the call, so they are moved to that scope as well. The autograd engine holds its own reference to every
/// one of them, so each handle only pins memory the engine has already finished with: on the TinyLlama-1.1B shape
/// the 154 4-bit linears of a QLoRA step kept ≈ 96 MiB of dead gradients alive to the end of backward, and under
/// gradient checkpointing every block's returned input and adapter gradients stayed beside the accumulated ones
/// (perf/results/bench-memory-cpu.md). A backward disposes its incoming gradient when it is done with it, and
/// registers what it returns here; the engine consumes a returned gradient before it calls the next node, so the
/// next backward on the same thread disposes the handles of the previous ones. Disposing a handle drops one
/// reference and never frees storage that the engine or a parameter's <c>.grad</c> still holds.
/// </remarks>
public static class BackwardHandles
{
    [ThreadStatic]
    private static List<Tensor>? _returned;

    /// <summary>Disposes the handles that earlier backward calls on this thread returned (the engine has taken them).</summary>
    public static void ReleaseEarlier()
    {
        var returned = _returned;
        if (returned is null || returned.Count == 0) return;
        foreach (var t in returned) t.Dispose();
        returned.Clear();
    }

    /// <summary>Registers the gradients a backward is about to return, to be released by the next backward; returns them.</summary>
    public static List<Tensor> Returning(List<Tensor> gradients)
    {
        var returned = _returned ??= [];
        foreach (var t in gradients)
            if (t is not null) returned.Add(t);
        return gradients;
    }
}
