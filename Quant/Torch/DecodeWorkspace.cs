using TorchSharp;
using static TorchSharp.torch;

namespace QuantPeft.Quant.Torch;

/// <summary>
/// The one slab buffer that 4-bit matmuls decode their weight into, kept for the life of the process and shared by
/// every layer (per dtype and device), instead of a fresh buffer per call.
/// </summary>
/// <remarks>
/// On the CPU libtorch allocates with <c>malloc</c>, and once glibc has raised its mmap threshold a per-call slab
/// (4–56 MiB for 1B–70B shapes) comes from the heap arenas. A forward pass then interleaves those large transients
/// with the small activations that survive each layer, the survivors land in the freed slabs' holes, and the next
/// slab no longer fits: on the TinyLlama-1.1B shape the arenas kept ≈ 125 MiB of freed, resident pages per forward
/// pass beside ≈ 190 MiB of activations (perf/results/bench-memory-cpu.md). One persistent buffer removes that churn;
/// the planner prices one dequantized slab in every phase that runs a 4-bit matmul (docs/planner.md).
/// Callers hold <see cref="Gate"/> while they use the buffer, so concurrent forwards on other threads (tests run in
/// parallel) wait rather than overwrite each other's slab.
/// </remarks>
internal static class DecodeWorkspace
{
    /// <summary>Held while a rented buffer is in use.</summary>
    public static readonly object Gate = new();

    private static readonly Dictionary<(string, ScalarType, DeviceType, int), Tensor> Buffers = [];

    /// <summary>
    /// A contiguous [<paramref name="rows"/>, <paramref name="cols"/>] view of the shared buffer, grown when too small.
    /// The caller must hold <see cref="Gate"/> until it no longer uses the view; disposing the view frees nothing.
    /// </summary>
    public static Tensor Rent(long rows, long cols, ScalarType dtype, Device device) => Rent("slab", rows, cols, dtype, device);

    /// <summary>
    /// A [<paramref name="blocks"/>] f32 view of the shared buffer that a double-quantized weight's block scales are
    /// decoded into (beside the slab buffer of <see cref="Rent(long, long, ScalarType, Device)"/>); same rules.
    /// </summary>
    public static Tensor RentScales(long blocks, Device device) => Rent("scales", blocks, 1, ScalarType.Float32, device).view(blocks);

    private static Tensor Rent(string role, long rows, long cols, ScalarType dtype, Device device)
    {
        if (!Monitor.IsEntered(Gate)) throw new InvalidOperationException("DecodeWorkspace.Rent needs DecodeWorkspace.Gate held");
        long n = rows * cols;
        var key = (role, dtype, device.type, device.index);
        if (!Buffers.TryGetValue(key, out var buffer) || buffer.numel() < n)
        {
            buffer?.Dispose();
            // Detached from every dispose scope: the buffer outlives the call that first needed it.
            buffer = torch.empty([n], dtype, device).DetachFromDisposeScope();
            Buffers[key] = buffer;
        }
        return buffer.narrow(0, 0, n).view(rows, cols);
    }
}
