using System.Runtime.InteropServices;
using QuantPeft.Quant.Codecs;
using QuantPeft.Quant.Kernels;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantPeft.Quant.Torch;

/// <summary>
/// The CPU path of <see cref="FourBitQuantizer.Quantize"/>: the SIMD host codec (<see cref="SimdCodec"/>, all cores)
/// reads the weight's memory and writes the codes and block absmax straight into the result tensors. The
/// torch-operation path materialises float32 copies, index tensors and a bucketize per chunk and ran at a few M
/// parameters/s on one core here, which made quantize-on-load of a 7B model take most of an hour.
/// </summary>
/// <remarks>
/// <para>Codes are identical to the torch path's by construction of the arithmetic: both scale by the float32
/// reciprocal of the block's absmax (clamped to 1e-38 for the reciprocal only) with one IEEE multiply, and both
/// count bitsandbytes' literal NF4 / FP4 thresholds strictly below the scaled value (the torch path's clamp to
/// [−1, 1] cannot move a value across a threshold, since every threshold lies inside). The one difference in
/// statistics is that the host codec <i>stores</i> the clamped absmax (1e-38 for an all-zero block) while the torch
/// path stores the raw maximum (0) as the CUDA kernel does; such blocks are rare and get their raw maximum back
/// here, so the absmax vectors are equal too. Double quantization then runs through the same
/// <see cref="FourBitQuantizer.Finish"/> as the torch path.</para>
/// <para>Unlike the torch path, a NaN or ±Inf weight is rejected with an error naming the tensor and element,
/// since such a value has no code.</para>
/// </remarks>
internal static class HostFourBitQuantizer
{
    /// <summary>Quantizes a CPU weight already validated by <see cref="FourBitQuantizer"/>.</summary>
    /// <exception cref="QuantInputException">The weight holds NaN or ±Inf.</exception>
    public static QuantizedTensor Quantize(Tensor weight, FourBitType format, int blockSize, bool doubleQuant, string name)
    {
        using var scope = torch.NewDisposeScope();
        var source = weight.contiguous();
        long n = weight.numel();
        long blocks = (n + blockSize - 1) / blockSize;
        var packed = torch.empty([(n + 1) / 2, 1], ScalarType.Byte);
        var absmax = torch.empty([blocks], ScalarType.Float32);
        var type = format;
        Span<float> scales = MemoryMarshal.Cast<byte, float>(HostKernels.Bytes(absmax));
        try
        {
            switch (source.dtype)
            {
                case ScalarType.BFloat16:
                    SimdCodec.Instance.QuantizeFourBit(MemoryMarshal.Cast<byte, ushort>(HostKernels.Bytes(source)), type, blockSize, HostKernels.Bytes(packed), scales);
                    break;
                case ScalarType.Float16:
                    SimdCodec.Instance.QuantizeFourBit(MemoryMarshal.Cast<byte, Half>(HostKernels.Bytes(source)), type, blockSize, HostKernels.Bytes(packed), scales);
                    break;
                default:
                    SimdCodec.Instance.QuantizeFourBit(MemoryMarshal.Cast<byte, float>(HostKernels.Bytes(source)), type, blockSize, HostKernels.Bytes(packed), scales);
                    break;
            }
        }
        catch (QuantInputException e)
        {
            throw new QuantInputException($"'{name}': {e.Message}");
        }
        RestoreRawMaxima(source, blockSize, scales);
        return FourBitQuantizer.Finish(packed, absmax, doubleQuant, format, blockSize, weight);
    }

    // A stored 1e-38 is the codec's floor; the torch path stores the block's true maximum there (0 for an all-zero
    // block), so those few blocks are measured again. The codes were computed with the same floored reciprocal.
    private static void RestoreRawMaxima(Tensor source, int blockSize, Span<float> scales)
    {
        long n = source.numel();
        for (int b = 0; b < scales.Length; b++)
        {
            if (scales[b] != BlockScale.MinAbsMax) continue;
            int start = checked(b * blockSize);
            int length = (int)Math.Min(blockSize, n - start);
            float max = 0f;
            for (int i = start; i < start + length; i++) max = Math.Max(max, MathF.Abs(Element(source, i)));
            scales[b] = max;
        }
    }

    private static float Element(Tensor source, int index) => source.dtype switch
    {
        ScalarType.BFloat16 => FloatBits.BFloat16ToSingle(MemoryMarshal.Cast<byte, ushort>(HostKernels.Bytes(source))[index]),
        ScalarType.Float16 => (float)MemoryMarshal.Cast<byte, Half>(HostKernels.Bytes(source))[index],
        _ => MemoryMarshal.Cast<byte, float>(HostKernels.Bytes(source))[index],
    };
}
