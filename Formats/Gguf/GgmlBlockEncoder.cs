using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace QuantPeft.Formats.Gguf;

/// <summary>
/// Encodes float32 values into the ggml element types QuantPeft writes itself: F32, F16, BF16, Q8_0 and Q4_0, with
/// ggml's reference rounding, so a file reads back in llama.cpp to the values its own quantizer would produce.
/// </summary>
/// <remarks>
/// Q8_0: per block of 32, d = max|x| / 127 (stored as f16), q = round(x / d), value = q·d.
/// Q4_0: per block of 32, m = the element of largest magnitude (with its sign), d = m / −8 (f16),
/// q = min(15, trunc(x / d + 8.5)), value = (q − 8)·d; byte j of the 16 holds element j in its low nibble and
/// element j + 16 in its high nibble.
/// BF16: round to nearest, ties to even; NaN stays a quiet NaN.
/// </remarks>
public static class GgmlBlockEncoder
{
    /// <summary>Encodes <paramref name="values"/> (a whole number of blocks) into <paramref name="destination"/>.</summary>
    /// <exception cref="ArgumentException">The length is not a whole number of blocks, the destination has the wrong size, or the type is a k-quant.</exception>
    public static void Encode(ReadOnlySpan<float> values, GgmlType type, Span<byte> destination)
    {
        int block = GgmlTypes.BlockElements(type);
        if (values.Length % block != 0)
            throw new ArgumentException($"{values.Length} values are not a whole number of {type} blocks of {block}", nameof(values));
        if (destination.Length != GgmlTypes.ByteLength(type, values.Length))
            throw new ArgumentException($"destination holds {destination.Length} bytes; {values.Length} {type} values need {GgmlTypes.ByteLength(type, values.Length)}", nameof(destination));
        switch (type)
        {
            case GgmlType.F32:
                MemoryMarshal.AsBytes(values).CopyTo(destination);
                break;
            case GgmlType.F16:
                var halves = MemoryMarshal.Cast<byte, Half>(destination);
                for (int i = 0; i < values.Length; i++) halves[i] = (Half)values[i];
                break;
            case GgmlType.BF16:
                var words = MemoryMarshal.Cast<byte, ushort>(destination);
                for (int i = 0; i < values.Length; i++) words[i] = ToBFloat16(values[i]);
                break;
            case GgmlType.Q8_0:
                for (int b = 0; b < values.Length / 32; b++) EncodeQ8_0(values.Slice(b * 32, 32), destination.Slice(b * 34, 34));
                break;
            case GgmlType.Q4_0:
                for (int b = 0; b < values.Length / 32; b++) EncodeQ4_0(values.Slice(b * 32, 32), destination.Slice(b * 18, 18));
                break;
            default:
                throw new ArgumentException($"{type} is not encoded here; llama.cpp's quantizer writes the k-quants", nameof(type));
        }
    }

    /// <summary>float32 → bfloat16 bits, round to nearest even.</summary>
    public static ushort ToBFloat16(float value)
    {
        uint u = BitConverter.SingleToUInt32Bits(value);
        if ((u & 0x7fffffff) > 0x7f800000) return (ushort)((u >> 16) | 64);
        return (ushort)((u + 0x7fff + ((u >> 16) & 1)) >> 16);
    }

    private static void EncodeQ8_0(ReadOnlySpan<float> x, Span<byte> block)
    {
        float amax = 0;
        foreach (float v in x) amax = Math.Max(amax, Math.Abs(v));
        float d = amax / 127f;
        float id = d != 0 ? 1f / d : 0f;
        BinaryPrimitives.WriteHalfLittleEndian(block, (Half)d);
        for (int j = 0; j < 32; j++) block[2 + j] = (byte)(sbyte)MathF.Round(x[j] * id, MidpointRounding.AwayFromZero);
    }

    private static void EncodeQ4_0(ReadOnlySpan<float> x, Span<byte> block)
    {
        float amax = 0, max = 0;
        foreach (float v in x)
            if (Math.Abs(v) > amax) (amax, max) = (Math.Abs(v), v);
        float d = max / -8f;
        float id = d != 0 ? 1f / d : 0f;
        BinaryPrimitives.WriteHalfLittleEndian(block, (Half)d);
        for (int j = 0; j < 16; j++)
        {
            int lo = Math.Min(15, (int)(sbyte)(x[j] * id + 8.5f));
            int hi = Math.Min(15, (int)(sbyte)(x[j + 16] * id + 8.5f));
            block[2 + j] = (byte)(lo | (hi << 4));
        }
    }
}
