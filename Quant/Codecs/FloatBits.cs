namespace QuantPeft.Quant.Codecs;

/// <summary>
/// Conversions between float32 and the two 16-bit formats, written with integer operations only so that
/// the scalar and SIMD paths perform exactly the same rounding (round to nearest, ties to even,
/// the rounding torch's <c>.to(bfloat16)</c> / <c>.to(float16)</c> use).
/// </summary>
public static class FloatBits
{
    /// <summary>bfloat16 bits → float32 (exact).</summary>
    public static float BFloat16ToSingle(ushort bits) => BitConverter.Int32BitsToSingle(bits << 16);

    /// <summary>float32 → bfloat16 bits, rounding to nearest even; NaN stays a quiet NaN of the same sign.</summary>
    public static ushort SingleToBFloat16(float value)
    {
        uint bits = BitConverter.SingleToUInt32Bits(value);
        if ((bits & 0x7FFF_FFFFu) > 0x7F80_0000u) return (ushort)((bits >> 16) | 0x0040u);
        return (ushort)((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16);
    }

    /// <summary>
    /// float32 → IEEE binary16 bits, rounding to nearest even, overflow to ±Inf, NaN to a quiet NaN.
    /// Equal to <c>BitConverter.HalfToUInt16Bits((Half)value)</c> for every input; it exists so that GPU kernels
    /// can use the same integer formulation.
    /// </summary>
    public static ushort SingleToHalfBits(float value)
    {
        uint bits = BitConverter.SingleToUInt32Bits(value);
        uint sign = (bits >> 16) & 0x8000u;
        uint abs = bits & 0x7FFF_FFFFu;
        if (abs > 0x7F80_0000u) return (ushort)(sign | 0x7E00u | ((abs >> 13) & 0x3FFu));
        if (abs >= 0x477F_F000u) return (ushort)(sign | 0x7C00u); // rounds to or beyond 65520 → Inf
        if (abs >= 0x3880_0000u)
        {
            // Normal half: rebias the exponent (127 → 15) and round the 13 dropped mantissa bits.
            uint rebased = abs - 0x3800_0000u;
            return (ushort)(sign | ((rebased + 0x0FFFu + ((rebased >> 13) & 1u)) >> 13));
        }
        if (abs < 0x3300_0000u) return (ushort)sign; // below half of the smallest subnormal: ±0
        // Subnormal half (unit 2^-24): value = mantissa · 2^(exponent-150), so the count of units is
        // mantissa · 2^(exponent-126), a right shift by 126 - exponent (14..24 here).
        uint exponent = abs >> 23;
        uint mantissa = (abs & 0x7F_FFFFu) | 0x80_0000u;
        int shift = (int)(126 - exponent);
        uint rounded = mantissa >> shift;
        uint remainder = mantissa & ((1u << shift) - 1u);
        uint half = 1u << (shift - 1);
        if (remainder > half || (remainder == half && (rounded & 1u) != 0)) rounded++;
        return (ushort)(sign | rounded);
    }
}
