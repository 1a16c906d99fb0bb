namespace QuantPeft.Quant.Codecs;

/// <summary>
/// NormalFloat-k blockwise absmax quantization for k = 2..8 (LQ-LoRA's NF2/NF3/NF4/NF8), scalar reference.
/// </summary>
/// <remarks>
/// <para>Same per-block arithmetic as <see cref="ReferenceCodec"/> (float32 absmax ≥ 1e-38, x̂ = x · (1/absmax),
/// nearest code with ties to the lower code) over <see cref="CodeTables.NormalFloat"/>.</para>
/// <para>Packing: a most-significant-bit-first bit stream; element i occupies bits <c>[i·k, i·k + k)</c> counted from
/// the top bit of byte 0, so <c>ceil(n·k / 8)</c> bytes. For k = 4 this is exactly bitsandbytes' nibble order
/// (element 2j in the high nibble), so NF-4 output equals <see cref="FourBitType.Nf4"/> output byte for byte.
/// Whole k-bit slots left in the last byte hold the code of 0.0 (as bnb pads an odd NF4 tail); bits that do
/// not make a whole slot (k = 3, 5, 6, 7) are 0.</para>
/// </remarks>
public static class NormalFloatCodec
{
    /// <summary>Bytes of packed codes for <paramref name="count"/> elements of <paramref name="bits"/> bits.</summary>
    public static long PackedLength(long count, int bits) => (count * bits + 7) / 8;

    /// <summary>Quantizes <paramref name="input"/> to packed NF-k codes and per-block absmax.</summary>
    /// <exception cref="ArgumentOutOfRangeException">bits is outside 2..8.</exception>
    /// <exception cref="QuantInputException">Bad block size, wrong buffer lengths, or a non-finite input.</exception>
    public static void Quantize(ReadOnlySpan<float> input, int bits, int blockSize, Span<byte> packed, Span<float> absmax)
    {
        CodeBook book = CodeBook.NormalFloat(bits);
        Check(input.Length, bits, blockSize, packed.Length, absmax.Length);
        packed.Clear();
        int n = input.Length;
        for (int block = 0; block < absmax.Length; block++)
        {
            int start = block * blockSize;
            ReadOnlySpan<float> values = input.Slice(start, Math.Min(blockSize, n - start));
            float scale = BlockScale.AbsMax(values, start);
            absmax[block] = scale;
            float inverse = 1f / scale;
            for (int i = 0; i < values.Length; i++) Write(packed, start + i, bits, book.Encode(values[i] * inverse));
        }
        int zero = book.Encode(0f);
        for (long slot = n; (slot + 1) * bits <= packed.Length * 8L; slot++) Write(packed, slot, bits, zero);
    }

    /// <summary>Decodes <c>table[code] · absmax[i / blockSize]</c> in float32 into <paramref name="output"/> (length n).</summary>
    /// <exception cref="ArgumentOutOfRangeException">bits is outside 2..8.</exception>
    /// <exception cref="QuantInputException">Bad block size or wrong buffer lengths.</exception>
    public static void Dequantize(ReadOnlySpan<byte> packed, ReadOnlySpan<float> absmax, int bits, int blockSize, Span<float> output)
    {
        ReadOnlySpan<float> table = CodeBook.NormalFloat(bits).Values;
        Check(output.Length, bits, blockSize, packed.Length, absmax.Length);
        for (int i = 0; i < output.Length; i++) output[i] = table[Read(packed, i, bits)] * absmax[i / blockSize];
    }

    private static void Check(int count, int bits, int blockSize, int packedLength, int absmaxLength)
    {
        BlockSizes.Validate(blockSize, "blockSize");
        if (PackedLength(count, bits) != packedLength)
            throw new QuantInputException($"packed: expected length {PackedLength(count, bits)} for {count} {bits}-bit codes, found {packedLength}");
        if (BlockSizes.BlockCount(count, blockSize) != absmaxLength)
            throw new QuantInputException($"absmax: expected length {BlockSizes.BlockCount(count, blockSize)} for {count} elements, found {absmaxLength}");
    }

    private static void Write(Span<byte> packed, long index, int bits, int code)
    {
        for (int b = 0; b < bits; b++)
        {
            long bit = index * bits + b;
            int value = (code >> (bits - 1 - b)) & 1;
            packed[(int)(bit / 8)] |= (byte)(value << (7 - (int)(bit % 8)));
        }
    }

    private static int Read(ReadOnlySpan<byte> packed, long index, int bits)
    {
        int code = 0;
        for (int b = 0; b < bits; b++)
        {
            long bit = index * bits + b;
            code = (code << 1) | ((packed[(int)(bit / 8)] >> (7 - (int)(bit % 8))) & 1);
        }
        return code;
    }
}
