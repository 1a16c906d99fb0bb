using QuantPeft.Quant.Codecs;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantPeft.Quant.Torch;

/// <summary>
/// Quantizes a 2-D weight to bitsandbytes' blockwise 4-bit format (NF4 or FP4, optional double
/// quantization of the absmax): on the CPU with the multi-threaded SIMD host codec
/// (<see cref="HostFourBitQuantizer"/>), elsewhere with TorchSharp operations on the weight's own device. Both
/// paths give the same bytes (codes, absmax, nested statistics) for the same weight.
/// </summary>
/// <remarks>
/// The bytes follow ALGORITHMS.md §1: the weight is flattened row-major and split into blocks of
/// <c>blockSize</c>; <c>absmax_b = max|x|</c> (float32); <c>x̂ = clamp(x · (1 / max(absmax_b, 1e−38)), −1, 1)</c>
/// in float32; the code is the nearest table entry with ties to the lower code (NF4: the CUDA kernel's
/// midpoint thresholds; FP4: its thresholds on |x̂| then the sign bit for x̂ &lt; 0); element 2j goes to the
/// high nibble of byte j, and an odd count is padded with the code of 0.0. With double quantization,
/// <c>offset = mean(absmax)</c> and <c>absmax − offset</c> is quantized in blocks of 256 with the signed
/// dynamic map, keeping a float32 absmax per 256 blocks. The stored absmax is the raw maximum (0 for an
/// all-zero block, as bitsandbytes stores it); the clamp only guards the reciprocal.
/// </remarks>
public static class FourBitQuantizer
{
    /// <summary>bitsandbytes' default 4-bit block size.</summary>
    public const int DefaultBlockSize = 64;

    /// <summary>The block size of the second-level (double) quantization; fixed by bitsandbytes.</summary>
    public const int NestedBlockSize = 256;

    // Elements encoded per pass: bounds the float32 and index temporaries of quantization to ~40 MB.
    private const long QuantizeChunkElements = 1L << 22;

    /// <summary>Quantizes <paramref name="weight"/> (bf16, f16 or f32, 2-D) to a new <see cref="QuantizedTensor"/>.</summary>
    /// <param name="weight">The weight, <c>[out, in]</c>; not modified, not disposed.</param>
    /// <param name="format">NF4 or FP4.</param>
    /// <param name="blockSize">Elements per absmax block: a power of two from 32 to 4096.</param>
    /// <param name="doubleQuant">Also quantize the absmax values (bitsandbytes' <c>compress_statistics</c>).</param>
    /// <param name="name">The tensor's name for error messages (e.g. a checkpoint key).</param>
    /// <exception cref="QuantInputException">The weight is not a non-empty 2-D float tensor, or the block size is not allowed.</exception>
    public static QuantizedTensor Quantize(
        Tensor weight, FourBitType format = FourBitType.Nf4, int blockSize = DefaultBlockSize,
        bool doubleQuant = false, string name = "weight")
    {
        Validate(weight, blockSize, name);
        return HostQuantizable(weight)
            ? HostFourBitQuantizer.Quantize(weight, format, blockSize, doubleQuant, name)
            : QuantizeWithTorchOps(weight, format, blockSize, doubleQuant);
    }

    /// <summary>
    /// Whether <see cref="Quantize"/> takes the host path: the weight is on the CPU and small enough for the SIMD
    /// codec's span indexing (bytes and elements below 2³¹).
    /// </summary>
    internal static bool HostQuantizable(Tensor weight) =>
        HostKernels.For(weight.device) && weight.numel() * weight.ElementSize <= int.MaxValue;

    /// <summary>The device path: TorchSharp operations on the weight's own device, in chunks of whole blocks.</summary>
    internal static QuantizedTensor QuantizeWithTorchOps(Tensor weight, FourBitType format, int blockSize, bool doubleQuant)
    {
        using var scope = torch.NewDisposeScope();
        long n = weight.numel();
        long blocks = (n + blockSize - 1) / blockSize;
        var device = weight.device;
        var flat = weight.reshape(-1);
        var packed = torch.empty([(n + 1) / 2, 1], ScalarType.Byte, device);
        var absmax = torch.empty([blocks], ScalarType.Float32, device);
        var packedFlat = packed.view(-1);

        long chunkBlocks = Math.Max(1, QuantizeChunkElements / blockSize);
        for (long b0 = 0; b0 < blocks; b0 += chunkBlocks)
        {
            using var inner = torch.NewDisposeScope();
            long b1 = Math.Min(blocks, b0 + chunkBlocks);
            long start = b0 * blockSize;
            long count = Math.Min(n, b1 * blockSize) - start;
            long padded = (b1 - b0) * blockSize;
            var x = flat.narrow(0, start, count).to(ScalarType.Float32);
            // Zero padding leaves a partial block's absmax unchanged and encodes as the code of 0.0.
            if (padded != count) x = torch.nn.functional.pad(x, [0, padded - count]);
            var xb = x.view(b1 - b0, blockSize);
            var blockMax = xb.abs().amax(1);
            absmax.narrow(0, b0, b1 - b0).copy_(blockMax);
            var reciprocal = blockMax.ClampMin(1e-38).reciprocal();
            var scaled = xb.mul(reciprocal.unsqueeze(1)).ClampInPlace(-1, 1).view(-1);
            long even = count + (count & 1);
            var codes = FourBitCodeBook.Encode(scaled.narrow(0, 0, even), format).view(-1, 2);
            var bytes = codes.select(1, 0).Mul(16L).bitwise_or_(codes.select(1, 1));
            packedFlat.narrow(0, start / 2, even / 2).copy_(bytes);
        }

        return Finish(packed, absmax, doubleQuant, format, blockSize, weight);
    }

    /// <summary>
    /// Wraps the codes and the float32 block absmax into the result, double-quantizing the absmax when asked.
    /// Both paths end here, so their statistics come from the same operations: <c>offset = mean(absmax)</c> in
    /// torch's float32 reduction, then <see cref="DynamicBlockwise8Bit"/> on <c>absmax − offset</c>.
    /// </summary>
    internal static QuantizedTensor Finish(Tensor packed, Tensor absmax, bool doubleQuant, FourBitType format, int blockSize, Tensor weight)
    {
        using var scope = torch.NewDisposeScope();
        if (!doubleQuant)
        {
            return new QuantizedTensor(
                packed.MoveToOuterDisposeScope(), absmax.MoveToOuterDisposeScope(), nestedAbsMax: null, nestedOffset: 0f,
                format, blockSize, weight.shape, weight.dtype);
        }

        float offset = absmax.mean().item<float>();
        var (qAbsMax, nested) = DynamicBlockwise8Bit.Quantize(absmax.Sub(offset), NestedBlockSize);
        return new QuantizedTensor(
            packed.MoveToOuterDisposeScope(), qAbsMax.MoveToOuterDisposeScope(), nested.MoveToOuterDisposeScope(),
            offset, format, blockSize, weight.shape, weight.dtype);
    }

    /// <summary>Checks a block size against bitsandbytes' allowed set (powers of two, 32 to 4096).</summary>
    internal static void ValidateBlockSize(int blockSize, string name)
    {
        if (blockSize < 32 || blockSize > 4096 || (blockSize & (blockSize - 1)) != 0)
            throw new QuantInputException(
                $"'{name}': block size must be a power of two from 32 to 4096, got {blockSize}.");
    }

    private static void Validate(Tensor weight, int blockSize, string name)
    {
        ValidateBlockSize(blockSize, name);
        if (weight.dim() != 2)
            throw new QuantInputException(
                $"'{name}': expected a 2-D weight [out, in], got shape [{string.Join(", ", weight.shape)}].");
        if (weight.numel() == 0)
            throw new QuantInputException($"'{name}': cannot quantize an empty tensor [{string.Join(", ", weight.shape)}].");
        if (weight.dtype is not (ScalarType.BFloat16 or ScalarType.Float16 or ScalarType.Float32))
            throw new QuantInputException(
                $"'{name}': 4-bit quantization takes bfloat16, float16 or float32, got {weight.dtype}.");
    }
}
