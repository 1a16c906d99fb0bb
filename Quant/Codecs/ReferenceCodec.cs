namespace QuantPeft.Quant.Codecs;

/// <summary>
/// The scalar reference: one element at a time, in plain loops, defining what every other backend must
/// reproduce bit for bit.
/// </summary>
/// <remarks>
/// Per block: <c>a = max(max|x|, 1e-38)</c> (<see cref="BlockScale.AbsMax"/>), <c>inv = 1f / a</c>,
/// <c>x̂ = x · inv</c>, <c>code = book.Encode(x̂)</c>. Multiplying by a reciprocal rather than dividing is what
/// bitsandbytes does on every backend (<c>A * (1 / absmax)</c>, CUDA's <c>local_abs_max = 1/absmax</c>), and it
/// is what a vector kernel wants: one correctly rounded division per block, then one correctly rounded multiply
/// per element, which every IEEE backend computes identically. x̂ is not clamped to [−1, 1]: every threshold lies
/// strictly inside (−1, 1), so a clamp could not change a code. Decode is one float32 multiply,
/// <c>table[code] · a</c>, then round-to-nearest-even to the output type.
/// </remarks>
public sealed class ReferenceCodec : IBlockwiseCodec
{
    /// <summary>The single instance (the codec is stateless).</summary>
    public static ReferenceCodec Instance { get; } = new();

    private ReferenceCodec() { }

    /// <inheritdoc/>
    public void QuantizeFourBit(ReadOnlySpan<float> input, FourBitType type, int blockSize, Span<byte> packed, Span<float> absmax)
    {
        CodecChecks.FourBit(input.Length, blockSize, packed.Length, absmax.Length);
        CodeBook book = CodeBook.ForFourBit(type);
        int n = input.Length;
        if (n % 2 == 1) packed[^1] = (byte)book.Encode(0f); // the low nibble of an odd tail holds the code of 0.0
        for (int block = 0; block < absmax.Length; block++)
        {
            int start = block * blockSize;
            ReadOnlySpan<float> values = input.Slice(start, Math.Min(blockSize, n - start));
            float scale = BlockScale.AbsMax(values, start);
            absmax[block] = scale;
            float inverse = 1f / scale;
            for (int i = 0; i < values.Length; i++)
            {
                int code = book.Encode(values[i] * inverse);
                int index = start + i;
                if (index % 2 == 0) packed[index / 2] = (byte)((code << 4) | (packed[index / 2] & 0x0F));
                else packed[index / 2] = (byte)((packed[index / 2] & 0xF0) | code);
            }
        }
    }

    /// <inheritdoc/>
    public void QuantizeFourBit(ReadOnlySpan<ushort> input, FourBitType type, int blockSize, Span<byte> packed, Span<float> absmax)
    {
        var widened = new float[input.Length];
        for (int i = 0; i < input.Length; i++) widened[i] = FloatBits.BFloat16ToSingle(input[i]);
        QuantizeFourBit(widened, type, blockSize, packed, absmax);
    }

    /// <inheritdoc/>
    public void QuantizeFourBit(ReadOnlySpan<Half> input, FourBitType type, int blockSize, Span<byte> packed, Span<float> absmax)
    {
        var widened = new float[input.Length];
        for (int i = 0; i < input.Length; i++) widened[i] = (float)input[i];
        QuantizeFourBit(widened, type, blockSize, packed, absmax);
    }

    /// <inheritdoc/>
    public void DequantizeFourBit(ReadOnlySpan<byte> packed, ReadOnlySpan<float> absmax, FourBitType type, int blockSize, Span<float> output)
    {
        CodecChecks.FourBit(output.Length, blockSize, packed.Length, absmax.Length);
        for (int i = 0; i < output.Length; i++) output[i] = DecodeFourBit(packed, absmax, type, blockSize, i);
    }

    /// <inheritdoc/>
    public void DequantizeFourBit(ReadOnlySpan<byte> packed, ReadOnlySpan<float> absmax, FourBitType type, int blockSize, Span<ushort> output)
    {
        CodecChecks.FourBit(output.Length, blockSize, packed.Length, absmax.Length);
        for (int i = 0; i < output.Length; i++)
            output[i] = FloatBits.SingleToBFloat16(DecodeFourBit(packed, absmax, type, blockSize, i));
    }

    /// <inheritdoc/>
    public void DequantizeFourBit(ReadOnlySpan<byte> packed, ReadOnlySpan<float> absmax, FourBitType type, int blockSize, Span<Half> output)
    {
        CodecChecks.FourBit(output.Length, blockSize, packed.Length, absmax.Length);
        for (int i = 0; i < output.Length; i++) output[i] = (Half)DecodeFourBit(packed, absmax, type, blockSize, i);
    }

    /// <inheritdoc/>
    public void QuantizeDynamic(ReadOnlySpan<float> input, DynamicMap map, int blockSize, Span<byte> codes, Span<float> absmax)
    {
        CodecChecks.Dynamic(input.Length, blockSize, codes.Length, absmax.Length);
        CodeBook book = map.Book();
        for (int block = 0; block < absmax.Length; block++)
        {
            int start = block * blockSize;
            ReadOnlySpan<float> values = input.Slice(start, Math.Min(blockSize, input.Length - start));
            float scale = BlockScale.AbsMax(values, start);
            absmax[block] = scale;
            float inverse = 1f / scale;
            for (int i = 0; i < values.Length; i++) codes[start + i] = (byte)book.Encode(values[i] * inverse);
        }
    }

    /// <inheritdoc/>
    public void DequantizeDynamic(ReadOnlySpan<byte> codes, ReadOnlySpan<float> absmax, DynamicMap map, int blockSize, Span<float> output)
    {
        CodecChecks.Dynamic(output.Length, blockSize, codes.Length, absmax.Length);
        ReadOnlySpan<float> table = map.Book().Values;
        for (int i = 0; i < output.Length; i++) output[i] = table[codes[i]] * absmax[i / blockSize];
    }

    private static float DecodeFourBit(ReadOnlySpan<byte> packed, ReadOnlySpan<float> absmax, FourBitType type, int blockSize, int index)
    {
        byte pair = packed[index / 2];
        int code = index % 2 == 0 ? pair >> 4 : pair & 0x0F;
        return CodeBook.ForFourBit(type).Values[code] * absmax[index / blockSize];
    }
}
