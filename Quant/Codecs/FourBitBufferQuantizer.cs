using QuantPeft.Quant.Kernels;

namespace QuantPeft.Quant.Codecs;

/// <summary>
/// bitsandbytes' <c>quantize_4bit</c> / <c>dequantize_4bit</c> as pure functions over flat buffers. The backend is
/// any <see cref="IBlockwiseCodec"/>; the default is <see cref="SimdCodec.Instance"/>.
/// </summary>
public static class FourBitBufferQuantizer
{
    /// <summary>Quantizes float32 weights of <paramref name="shape"/>.</summary>
    /// <param name="weights">Row-major values; length = product of <paramref name="shape"/>.</param>
    /// <param name="shape">The original shape, kept in the state.</param>
    /// <param name="type">NF4 (QLoRA) or FP4.</param>
    /// <param name="blockSize">Elements per absmax block, a power of two in 32..4096.</param>
    /// <param name="doubleQuant">Quantize the absmax vector again (bnb's <c>compress_statistics</c>).</param>
    /// <param name="codec">The backend; null for the SIMD CPU codec.</param>
    /// <exception cref="QuantInputException">Bad block size, a length/shape mismatch, or a non-finite weight.</exception>
    public static PackedFourBitTensor Quantize(ReadOnlySpan<float> weights, IReadOnlyList<long> shape, FourBitType type = FourBitType.Nf4,
        int blockSize = BlockSizes.FourBitDefault, bool doubleQuant = true, IBlockwiseCodec? codec = null)
    {
        (byte[] packed, float[] absmax) = Buffers(weights.Length, shape, blockSize);
        (codec ?? SimdCodec.Instance).QuantizeFourBit(weights, type, blockSize, packed, absmax);
        return Finish(packed, absmax, type, blockSize, shape, ElementType.Float32, doubleQuant, codec);
    }

    /// <summary>Quantizes bfloat16 weights (raw bits); see the float32 overload.</summary>
    /// <exception cref="QuantInputException">Bad block size, a length/shape mismatch, or a non-finite weight.</exception>
    public static PackedFourBitTensor Quantize(ReadOnlySpan<ushort> weights, IReadOnlyList<long> shape, FourBitType type = FourBitType.Nf4,
        int blockSize = BlockSizes.FourBitDefault, bool doubleQuant = true, IBlockwiseCodec? codec = null)
    {
        (byte[] packed, float[] absmax) = Buffers(weights.Length, shape, blockSize);
        (codec ?? SimdCodec.Instance).QuantizeFourBit(weights, type, blockSize, packed, absmax);
        return Finish(packed, absmax, type, blockSize, shape, ElementType.BFloat16, doubleQuant, codec);
    }

    /// <summary>Quantizes float16 weights; see the float32 overload.</summary>
    /// <exception cref="QuantInputException">Bad block size, a length/shape mismatch, or a non-finite weight.</exception>
    public static PackedFourBitTensor Quantize(ReadOnlySpan<Half> weights, IReadOnlyList<long> shape, FourBitType type = FourBitType.Nf4,
        int blockSize = BlockSizes.FourBitDefault, bool doubleQuant = true, IBlockwiseCodec? codec = null)
    {
        (byte[] packed, float[] absmax) = Buffers(weights.Length, shape, blockSize);
        (codec ?? SimdCodec.Instance).QuantizeFourBit(weights, type, blockSize, packed, absmax);
        return Finish(packed, absmax, type, blockSize, shape, ElementType.Float16, doubleQuant, codec);
    }

    /// <summary>Decodes to float32 (length = element count).</summary>
    /// <exception cref="QuantInputException">Wrong output length.</exception>
    public static void Dequantize(PackedFourBitTensor tensor, Span<float> output, IBlockwiseCodec? codec = null) =>
        (codec ?? SimdCodec.Instance).DequantizeFourBit(tensor.Packed, tensor.State.GetAbsMax(), tensor.State.QuantType, tensor.State.BlockSize, output);

    /// <summary>Decodes to bfloat16 bits.</summary>
    /// <exception cref="QuantInputException">Wrong output length.</exception>
    public static void Dequantize(PackedFourBitTensor tensor, Span<ushort> output, IBlockwiseCodec? codec = null) =>
        (codec ?? SimdCodec.Instance).DequantizeFourBit(tensor.Packed, tensor.State.GetAbsMax(), tensor.State.QuantType, tensor.State.BlockSize, output);

    /// <summary>Decodes to float16.</summary>
    /// <exception cref="QuantInputException">Wrong output length.</exception>
    public static void Dequantize(PackedFourBitTensor tensor, Span<Half> output, IBlockwiseCodec? codec = null) =>
        (codec ?? SimdCodec.Instance).DequantizeFourBit(tensor.Packed, tensor.State.GetAbsMax(), tensor.State.QuantType, tensor.State.BlockSize, output);

    private static (byte[] Packed, float[] AbsMax) Buffers(int count, IReadOnlyList<long> shape, int blockSize)
    {
        BlockSizes.Validate(blockSize, "blockSize");
        long expected = shape.Aggregate(1L, (a, d) => a * d);
        if (expected != count)
            throw new QuantInputException($"weights: expected {expected} values for shape [{string.Join(", ", shape)}], found {count}");
        return (new byte[(count + 1) / 2], new float[BlockSizes.BlockCount(count, blockSize)]);
    }

    private static PackedFourBitTensor Finish(byte[] packed, float[] absmax, FourBitType type, int blockSize, IReadOnlyList<long> shape,
        ElementType dtype, bool doubleQuant, IBlockwiseCodec? codec)
    {
        var state = doubleQuant
            ? new QuantState(type, blockSize, shape, dtype, null, DoubleQuantization.Compress(absmax, codec ?? SimdCodec.Instance))
            : new QuantState(type, blockSize, shape, dtype, absmax, null);
        return new PackedFourBitTensor(packed, state);
    }
}
