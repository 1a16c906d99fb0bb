using QuantPeft.Memory.Probes;
using TorchSharp;

namespace QuantPeft.Trainers.Model;

/// <summary>
/// Wraps a source so that, every 128 MiB of tensors handed out, the C heap gives the pages freed meanwhile back to the
/// kernel (glibc <c>malloc_trim</c>). libtorch allocates CPU tensors with malloc; glibc raises its mmap
/// threshold after the first large free, so the read buffer and the quantizer's chunk temporaries of one tensor land
/// in heap arenas between the codes of tensors already loaded, and freed arena pages stay resident. Without the trim,
/// loading TinyLlama-1.1B with an NF4 base peaked 0.8 GB above "resident model + largest tensor in f32" on the
/// 2-core CPU VM of perf/results; trimming brings an 8-layer slice from 123–127 % of that bound to 87–106 %
/// (perf/results/quantize-on-load.md). Elsewhere than glibc the trim is skipped.
/// </summary>
internal sealed class HeapTrimmingTensorSource(ITensorSource inner) : ISelectingTensorSource, IQuantizedTensorSource
{
    // Trimming costs a walk of the heap and page faults when the memory is touched again, so it runs once this many
    // bytes have been handed out rather than before every tensor; what stays resident in between is bounded by it.
    private const long TrimEveryBytes = 128L << 20;

    private long _sinceTrim;

    /// <inheritdoc />
    public string Origin => inner.Origin;

    /// <inheritdoc />
    public IEnumerable<string> Names => inner.Names;

    /// <inheritdoc />
    public torch.Tensor Get(string name)
    {
        if (_sinceTrim >= TrimEveryBytes)
        {
            NativeHeap.Trim();
            _sinceTrim = 0;
        }
        var tensor = inner.Get(name);
        _sinceTrim += tensor.numel() * tensor.ElementSize;
        return tensor;
    }

    /// <inheritdoc />
    public bool TrySelect(string name, int dim, long[] indices, out torch.Tensor? selected)
    {
        selected = null;
        if (inner is not ISelectingTensorSource selecting || !selecting.TrySelect(name, dim, indices, out selected)) return false;
        _sinceTrim += selected!.numel() * selected.ElementSize;
        return true;
    }

    /// <inheritdoc />
    public bool IsQuantized(string name) => inner is IQuantizedTensorSource q && q.IsQuantized(name);

    /// <inheritdoc />
    /// <exception cref="InvalidOperationException">The wrapped source stores nothing quantized.</exception>
    public QuantizedWeight GetQuantized(string name)
    {
        var source = inner as IQuantizedTensorSource ?? throw new InvalidOperationException($"{inner.Origin} stores no quantized tensors");
        if (_sinceTrim >= TrimEveryBytes)
        {
            NativeHeap.Trim();
            _sinceTrim = 0;
        }
        var weight = source.GetQuantized(name);
        // The reading buffers of a stored weight are about the size of its codes: half a byte per element.
        _sinceTrim += weight.Shape.Aggregate(1L, (a, d) => a * d) / 2;
        return weight;
    }
}
