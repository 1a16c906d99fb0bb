namespace QuantPeft.Quant.Codecs;

/// <summary>Bytes and bits per parameter of the 4-bit format, from the sizes the quantizer actually stores.</summary>
public static class StorageSize
{
    /// <summary>
    /// Bytes of a 4-bit tensor of <paramref name="count"/> elements: packed codes <c>(n+1)/2</c>, absmax (float32 per
    /// block, or uint8 per block + float32 per 256 blocks + the float32 offset when double-quantized). The constant
    /// code tables (64 + 1024 bytes) and the JSON are not counted; they do not grow with n.
    /// </summary>
    public static long FourBitBytes(long count, int blockSize, bool doubleQuant)
    {
        long blocks = (count + blockSize - 1) / blockSize;
        long statistics = doubleQuant ? blocks + (blocks + BlockSizes.OptimizerState - 1) / BlockSizes.OptimizerState * 4 + 4 : blocks * 4;
        return (count + 1) / 2 + statistics;
    }

    /// <summary>Bits per parameter of <see cref="FourBitBytes"/>; tends to 4 + 32/B (4.5 at B = 64), or 4 + 8/B + 32/(256B) (≈ 4.127) with double quantization.</summary>
    public static double FourBitBitsPerParameter(long count, int blockSize, bool doubleQuant) =>
        FourBitBytes(count, blockSize, doubleQuant) * 8.0 / count;

    /// <summary>Bytes of an 8-bit blockwise tensor: one code per element and a float32 absmax per block.</summary>
    public static long DynamicBytes(long count, int blockSize) => count + (count + blockSize - 1) / blockSize * 4;

    /// <summary>Bytes of an NF-k tensor with float32 absmax: <c>ceil(n·k/8)</c> + 4 per block.</summary>
    public static long NormalFloatBytes(long count, int bits, int blockSize) =>
        NormalFloatCodec.PackedLength(count, bits) + (count + blockSize - 1) / blockSize * 4;
}
