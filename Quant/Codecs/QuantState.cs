namespace QuantPeft.Quant.Codecs;

/// <summary>
/// Everything needed to decode a 4-bit tensor besides its packed codes — bitsandbytes' <c>QuantState</c>, with one
/// owner: the quantizer creates it, the serializer converts it losslessly to and from the checkpoint form, and
/// nothing else holds a copy of its fields.
/// </summary>
public sealed class QuantState
{
    private readonly float[]? _absmax;
    private readonly float[] _code;
    private readonly long[] _shape;

    /// <summary>Creates a state; exactly one of <paramref name="absmax"/> and <paramref name="nested"/> is given.</summary>
    /// <exception cref="QuantInputException">Inconsistent fields (block count, code table length, shape).</exception>
    public QuantState(FourBitType quantType, int blockSize, IReadOnlyList<long> shape, ElementType dtype,
        float[]? absmax, NestedAbsMax? nested, float[]? code = null)
    {
        BlockSizes.Validate(blockSize, "blocksize");
        if ((absmax is null) == (nested is null))
            throw new QuantInputException("absmax: expected either float32 absmax or a nested (double-quantized) absmax, not both or neither");
        long count = 1;
        foreach (long d in shape)
        {
            if (d < 0) throw new QuantInputException($"shape: expected non-negative dimensions, found [{string.Join(", ", shape)}]");
            count = checked(count * d);
        }
        if (count > Array.MaxLength) throw new QuantInputException($"shape: {count} elements exceed the largest supported tensor ({Array.MaxLength})");
        int blocks = BlockSizes.BlockCount(count, blockSize);
        int found = absmax?.Length ?? nested!.Codes.Length;
        if (found != blocks)
            throw new QuantInputException($"absmax: expected {blocks} blocks for shape [{string.Join(", ", shape)}] and blocksize {blockSize}, found {found}");
        code ??= CodeBook.ForFourBit(quantType).Values.ToArray();
        if (code.Length != 16) throw new QuantInputException($"quant_map: expected 16 float32 values, found {code.Length}");
        QuantType = quantType;
        BlockSize = blockSize;
        _shape = [.. shape];
        DType = dtype;
        _absmax = absmax;
        Nested = nested;
        _code = code;
        ElementCount = (int)count;
    }

    /// <summary>NF4 or FP4 (<c>quant_type</c>).</summary>
    public FourBitType QuantType { get; }

    /// <summary>Elements per absmax block (<c>blocksize</c>).</summary>
    public int BlockSize { get; }

    /// <summary>The original tensor shape (<c>shape</c>).</summary>
    public IReadOnlyList<long> Shape => _shape;

    /// <summary>The original element type, which dequantization returns by default (<c>dtype</c>).</summary>
    public ElementType DType { get; }

    /// <summary>Number of elements (product of <see cref="Shape"/>).</summary>
    public int ElementCount { get; }

    /// <summary>Number of absmax blocks.</summary>
    public int BlockCount => BlockSizes.BlockCount(ElementCount, BlockSize);

    /// <summary>The 16-entry code table (<c>quant_map</c>).</summary>
    public ReadOnlySpan<float> Code => _code;

    /// <summary>Whether the absmax is double-quantized.</summary>
    public bool IsNested => Nested is not null;

    /// <summary>The float32 absmax when not nested, else empty.</summary>
    public ReadOnlySpan<float> RawAbsMax => _absmax;

    /// <summary>The double-quantized absmax, or null.</summary>
    public NestedAbsMax? Nested { get; }

    /// <summary>The float32 absmax per block, recovered from the nested form if necessary.</summary>
    public float[] GetAbsMax()
    {
        if (_absmax is not null) return (float[])_absmax.Clone();
        var absmax = new float[BlockCount];
        DoubleQuantization.Recover(Nested!, absmax);
        return absmax;
    }

    /// <summary>Bytes of per-block statistics as stored: absmax (f32 or u8) plus nested absmax, excluding code tables.</summary>
    public long StatisticsBytes => _absmax is not null ? _absmax.Length * 4L : Nested!.Codes.Length + Nested.Scales.Length * 4L + 4;
}
