using TorchSharp;
using static TorchSharp.torch;

namespace QuantPeft.Quant.Torch;

/// <summary>
/// The gate in front of every host-only fast path: the SIMD codec reading and writing tensor memory through
/// <c>Tensor.bytes</c>, the host decode of double-quantized scales, the C heap trims. They apply to CPU tensors only;
/// a tensor on any other device takes the torch-op path on its own device (bit-identical by construction, see
/// <see cref="FourBitQuantizer"/> and <see cref="QuantizedTensor.Dequantize"/>).
/// </summary>
/// <remarks>
/// CI has no GPU, so <see cref="DeviceOnly"/> lets a test run a CPU model down the path a CUDA run takes: with it in
/// force the host paths are closed on the CPU too, and a host read reached anyway throws instead of reading.
/// The setting flows with the async context (tests that run in parallel do not see each other's).
/// </remarks>
public static class HostKernels
{
    private static readonly AsyncLocal<bool> DeviceOnlyScope = new();

    /// <summary>Whether host-only code may touch the memory of a tensor on <paramref name="device"/>.</summary>
    public static bool For(Device device) => device.type == DeviceType.CPU && !DeviceOnlyScope.Value;

    /// <summary>The bytes of a contiguous CPU tensor, for the host kernels.</summary>
    /// <exception cref="InvalidOperationException">The tensor is not on the CPU, or <see cref="DeviceOnly"/> is in force.</exception>
    public static Span<byte> Bytes(Tensor tensor)
    {
        if (!For(tensor.device))
            throw new InvalidOperationException($"host-only read of a tensor on {tensor.device}{(DeviceOnlyScope.Value ? " (device path in force)" : "")}: this path must use torch operations on the device");
        return tensor.bytes;
    }

    /// <summary>Until disposed, CPU tensors take the device path, as on a GPU, and host reads throw.</summary>
    public static IDisposable DeviceOnly()
    {
        bool previous = DeviceOnlyScope.Value;
        DeviceOnlyScope.Value = true;
        return new Restore(previous);
    }

    private sealed class Restore(bool previous) : IDisposable
    {
        public void Dispose() => DeviceOnlyScope.Value = previous;
    }
}
