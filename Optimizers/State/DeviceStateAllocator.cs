using TorchSharp;
using static TorchSharp.torch;

namespace QuantPeft.Optimizers.State;

/// <summary>Unpaged state: ordinary tensors on the parameter's device, always resident.</summary>
public sealed class DeviceStateAllocator : IStateAllocator
{
    /// <inheritdoc />
    public IStateTensor Allocate(string name, long[] shape, ScalarType dtype, Device device) =>
        new DeviceStateTensor(name, zeros(shape, dtype, device).DetachFromDisposeScope());

    /// <inheritdoc />
    public IDisposable Acquire(IReadOnlyList<IStateTensor> tensors) => NoLease.Instance;

    /// <inheritdoc />
    public void Prefetch(IReadOnlyList<IStateTensor> tensors) { }

    /// <inheritdoc />
    public StateBytes Measure(IEnumerable<IStateTensor> tensors)
    {
        // Every state sits on its parameter's device, the run's compute device (the CPU on a CPU run, whether or not a
        // GPU is present), so all of it is device memory.
        long device = 0;
        foreach (var t in tensors) device += t.Bytes;
        return new StateBytes(device, 0, 0);
    }

    /// <inheritdoc />
    public void Dispose() { }

    private sealed class DeviceStateTensor(string name, Tensor value) : IStateTensor
    {
        public string Name { get; } = name;
        public Tensor Value { get; } = value;
        public long Bytes => Value.numel() * Value.ElementSize;
        public void Dispose() => Value.Dispose();
    }

    private sealed class NoLease : IDisposable
    {
        public static readonly NoLease Instance = new();
        public void Dispose() { }
    }
}
