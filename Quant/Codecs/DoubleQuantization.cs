namespace QuantPeft.Quant.Codecs;

/// <summary>
/// The absmax vector quantized a second time, as bitsandbytes does with <c>compress_statistics=True</c>.
/// </summary>
public sealed class NestedAbsMax
{
    private readonly byte[] _codes;
    private readonly float[] _scales;

    /// <summary>Wraps already-computed fields (e.g. read from a checkpoint); the arrays are owned from now on.</summary>
    /// <exception cref="QuantInputException">The lengths do not agree with the block size.</exception>
    public NestedAbsMax(byte[] codes, float[] scales, float offset, int blockSize = BlockSizes.OptimizerState)
    {
        BlockSizes.Validate(blockSize, "nested_blocksize");
        if (scales.Length != BlockSizes.BlockCount(codes.Length, blockSize))
            throw new QuantInputException(
                $"nested_absmax: expected {BlockSizes.BlockCount(codes.Length, blockSize)} values for {codes.Length} absmax codes in blocks of {blockSize}, found {scales.Length}");
        _codes = codes;
        _scales = scales;
        Offset = offset;
        BlockSize = blockSize;
    }

    /// <summary>uint8 codes of <c>absmax − offset</c> in the signed dynamic map (<c>weight.absmax</c> when nested).</summary>
    public ReadOnlySpan<byte> Codes => _codes;

    /// <summary>float32 absmax of each block of <see cref="BlockSize"/> codes (<c>weight.nested_absmax</c>).</summary>
    public ReadOnlySpan<float> Scales => _scales;

    /// <summary>The mean of the original absmax vector (<c>nested_offset</c>).</summary>
    public float Offset { get; }

    /// <summary>Block size of the second level (<c>nested_blocksize</c>, 256).</summary>
    public int BlockSize { get; }
}

/// <summary>Double quantization of the 4-bit absmax vector (QLoRA §3, bitsandbytes <c>quantize_4bit</c>).</summary>
public static class DoubleQuantization
{
    /// <summary>
    /// <c>offset = mean(absmax)</c>; <c>absmax − offset</c> (float32) is quantized with the signed dynamic map in
    /// blocks of 256 by <paramref name="codec"/> (default: the reference).
    /// </summary>
    /// <remarks>
    /// The mean is summed in float64 sequentially and rounded once to float32, so it is deterministic and
    /// independent of thread count. torch's float32 <c>mean()</c> sums in a different order and may differ in the last
    /// ulp; the offset is stored with the state, so recovery is exact either way.
    /// </remarks>
    /// <exception cref="QuantInputException">The absmax vector is empty or holds a non-finite value.</exception>
    public static NestedAbsMax Compress(ReadOnlySpan<float> absmax, IBlockwiseCodec? codec = null)
    {
        if (absmax.Length == 0) throw new QuantInputException("absmax: expected at least one block, found none");
        double sum = 0;
        foreach (float a in absmax) sum += a;
        float offset = (float)(sum / absmax.Length);
        var centred = new float[absmax.Length];
        for (int i = 0; i < centred.Length; i++) centred[i] = absmax[i] - offset;
        var codes = new byte[absmax.Length];
        var scales = new float[BlockSizes.BlockCount(absmax.Length, BlockSizes.OptimizerState)];
        (codec ?? ReferenceCodec.Instance).QuantizeDynamic(centred, DynamicMap.Signed, BlockSizes.OptimizerState, codes, scales);
        return new NestedAbsMax(codes, scales, offset);
    }

    /// <summary>Recovers <c>absmax_i = dyn[q_i] · nested[i / 256] + offset</c>, in float32 (a multiply, then an add; never fused).</summary>
    /// <exception cref="QuantInputException"><paramref name="absmax"/> has the wrong length.</exception>
    public static void Recover(NestedAbsMax nested, Span<float> absmax)
    {
        if (absmax.Length != nested.Codes.Length)
            throw new QuantInputException($"absmax: expected length {nested.Codes.Length}, found {absmax.Length}");
        ReadOnlySpan<float> map = CodeTables.DynamicSigned;
        ReadOnlySpan<byte> codes = nested.Codes;
        ReadOnlySpan<float> scales = nested.Scales;
        for (int i = 0; i < absmax.Length; i++)
        {
            float product = map[codes[i]] * scales[i / nested.BlockSize];
            absmax[i] = product + nested.Offset;
        }
    }
}
