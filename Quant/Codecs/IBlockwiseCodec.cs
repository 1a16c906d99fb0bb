namespace QuantPeft.Quant.Codecs;

/// <summary>
/// The blockwise encode/decode operations, implemented by the scalar reference (<see cref="ReferenceCodec"/>),
/// and the SIMD CPU kernels (<see cref="Kernels.SimdCodec"/>). Both produce bit-identical outputs
/// (absmax, codes, decoded values) for the same input; the reference defines them.
/// </summary>
/// <remarks>
/// Layouts: 4-bit codes are packed two per byte, element 2j in the high nibble and 2j+1 in the low nibble,
/// <c>(n+1)/2</c> bytes, an odd tail padded with the code of 0.0 (NF4 7, FP4 0). 8-bit codes are one byte per
/// element. <c>absmax</c> has one float32 per block, <c>ceil(n / blockSize)</c> in total; the last block may be short.
/// bfloat16 values travel as their raw bits in <see cref="ushort"/>.
/// </remarks>
public interface IBlockwiseCodec
{
    /// <summary>Quantizes float32 values to packed 4-bit codes and per-block absmax.</summary>
    /// <exception cref="QuantInputException">Bad block size, wrong buffer lengths, or a non-finite input.</exception>
    void QuantizeFourBit(ReadOnlySpan<float> input, FourBitType type, int blockSize, Span<byte> packed, Span<float> absmax);

    /// <summary>Quantizes bfloat16 values (raw bits); they are widened to float32 exactly first.</summary>
    /// <exception cref="QuantInputException">Bad block size, wrong buffer lengths, or a non-finite input.</exception>
    void QuantizeFourBit(ReadOnlySpan<ushort> input, FourBitType type, int blockSize, Span<byte> packed, Span<float> absmax);

    /// <summary>Quantizes float16 values; they are widened to float32 exactly first.</summary>
    /// <exception cref="QuantInputException">Bad block size, wrong buffer lengths, or a non-finite input.</exception>
    void QuantizeFourBit(ReadOnlySpan<Half> input, FourBitType type, int blockSize, Span<byte> packed, Span<float> absmax);

    /// <summary>Decodes <c>table[code] · absmax[i / blockSize]</c> in float32; <paramref name="output"/>'s length is n.</summary>
    /// <exception cref="QuantInputException">Bad block size or wrong buffer lengths.</exception>
    void DequantizeFourBit(ReadOnlySpan<byte> packed, ReadOnlySpan<float> absmax, FourBitType type, int blockSize, Span<float> output);

    /// <summary>Decodes to bfloat16 bits: the float32 value rounded to nearest even.</summary>
    /// <exception cref="QuantInputException">Bad block size or wrong buffer lengths.</exception>
    void DequantizeFourBit(ReadOnlySpan<byte> packed, ReadOnlySpan<float> absmax, FourBitType type, int blockSize, Span<ushort> output);

    /// <summary>Decodes to float16: the float32 value rounded to nearest even.</summary>
    /// <exception cref="QuantInputException">Bad block size or wrong buffer lengths.</exception>
    void DequantizeFourBit(ReadOnlySpan<byte> packed, ReadOnlySpan<float> absmax, FourBitType type, int blockSize, Span<Half> output);

    /// <summary>Quantizes to one 8-bit dynamic-map code per element plus per-block absmax.</summary>
    /// <exception cref="QuantInputException">Bad block size, wrong buffer lengths, or a non-finite input.</exception>
    void QuantizeDynamic(ReadOnlySpan<float> input, DynamicMap map, int blockSize, Span<byte> codes, Span<float> absmax);

    /// <summary>Decodes <c>map[code] · absmax[i / blockSize]</c> in float32.</summary>
    /// <exception cref="QuantInputException">Bad block size or wrong buffer lengths.</exception>
    void DequantizeDynamic(ReadOnlySpan<byte> codes, ReadOnlySpan<float> absmax, DynamicMap map, int blockSize, Span<float> output);
}
