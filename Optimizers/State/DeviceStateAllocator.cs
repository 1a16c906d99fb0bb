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
        long device = 0, host = 0;
        foreach (var t in tensors)
        {
            // On a CPU-only box the CPU is the compute device; only CPU tensors beside a GPU count as host.
            bool onHost = t.Value.device_type == DeviceType.CPU && cuda.is_available();
            if (onHost) host += t.Bytes; else device += t.Bytes;
        }
        return new StateBytes(device, host, 0);
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
