using static TorchSharp.torch;

namespace QuantPeft.Optimizers.State;

/// <summary>
/// One tensor of optimizer state (a moment, its block absmax, a projector). Where it lives is the
/// allocator's business: <see cref="Value"/> is only valid while the owning parameter's state is acquired
/// (always, for unpaged state).
/// </summary>
public interface IStateTensor : IDisposable
{
    /// <summary>The state-dict suffix, e.g. <c>exp_avg</c> or <c>exp_avg.absmax</c>.</summary>
    string Name { get; }

    /// <summary>The tensor on the compute device.</summary>
    /// <exception cref="InvalidOperationException">The tensor is paged out.</exception>
    Tensor Value { get; }

    /// <summary>Element size × element count.</summary>
    long Bytes { get; }
}

/// <summary>Creates state tensors and brings them to the device for an update.</summary>
public interface IStateAllocator : IDisposable
{
    /// <summary>Allocates a zero-filled state tensor.</summary>
    IStateTensor Allocate(string name, long[] shape, ScalarType dtype, Device device);

    /// <summary>Makes <paramref name="tensors"/> resident until the returned lease is disposed.</summary>
    IDisposable Acquire(IReadOnlyList<IStateTensor> tensors);

    /// <summary>Starts bringing <paramref name="tensors"/> in ahead of use; a hint, may do nothing.</summary>
    void Prefetch(IReadOnlyList<IStateTensor> tensors);

    /// <summary>Where the bytes of <paramref name="tensors"/> are now.</summary>
    StateBytes Measure(IEnumerable<IStateTensor> tensors);
}
