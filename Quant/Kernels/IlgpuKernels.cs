using ILGPU;

namespace QuantPeft.Quant.Kernels;

/// <summary>
/// The ILGPU kernel bodies. They restate <see cref="Codecs.ReferenceCodec"/>'s arithmetic with operations that
/// every ILGPU backend performs with IEEE rounding: an exact max, one division per block, one multiply per element,
/// comparisons, integer bit manipulation for the 16-bit conversions. Nothing here is a multiply feeding an add, so no
/// backend can contract it into a fused multiply-add and change the rounding.
/// </summary>
internal static class IlgpuKernels
{
    /// <summary>One thread per block: absmax (NaN when the block holds a non-finite value), then packed 4-bit codes.</summary>
    public static void EncodeFourBit(Index1D block, ArrayView<float> input, int count, int blockSize,
        ArrayView<float> thresholds, ArrayView<int> magnitudeCodes, int signMagnitude, int zeroCode, ArrayView<byte> packed, ArrayView<float> absmax)
    {
        int start = block * blockSize;
        int end = start + blockSize < count ? start + blockSize : count;
        float scale = AbsMax(input, start, end);
        absmax[block] = scale;
        if (float.IsNaN(scale)) return;
        float inverse = 1f / scale;
        for (int i = start; i < end; i += 2)
        {
            int high = Encode(input[i] * inverse, thresholds, magnitudeCodes, signMagnitude != 0);
            int low = i + 1 < end ? Encode(input[i + 1] * inverse, thresholds, magnitudeCodes, signMagnitude != 0) : zeroCode;
            packed[i / 2] = (byte)((high << 4) | low);
        }
    }

    /// <summary>One thread per block: absmax, then one 8-bit code per element by binary search over the thresholds.</summary>
    public static void EncodeDynamic(Index1D block, ArrayView<float> input, int count, int blockSize,
        ArrayView<float> thresholds, ArrayView<byte> codes, ArrayView<float> absmax)
    {
        int start = block * blockSize;
        int end = start + blockSize < count ? start + blockSize : count;
        float scale = AbsMax(input, start, end);
        absmax[block] = scale;
        if (float.IsNaN(scale)) return;
        float inverse = 1f / scale;
        int length = (int)thresholds.Length;
        for (int i = start; i < end; i++)
        {
            float x = input[i] * inverse;
            int low = 0, high = length; // count of thresholds strictly below x
            while (low < high)
            {
                int mid = (low + high) >> 1;
                if (x > thresholds[mid]) low = mid + 1; else high = mid;
            }
            codes[i] = (byte)low;
        }
    }

    /// <summary>One thread per packed byte: two float32 outputs.</summary>
    public static void DecodeFourBitToSingle(Index1D pair, ArrayView<byte> packed, ArrayView<float> absmax, ArrayView<float> table,
        int count, int blockSize, ArrayView<float> output)
    {
        int i = pair * 2;
        byte b = packed[pair];
        float scale = absmax[i / blockSize];
        output[i] = table[b >> 4] * scale;
        if (i + 1 < count) output[i + 1] = table[b & 0x0F] * scale;
    }

    /// <summary>One thread per packed byte: two bfloat16 outputs (round to nearest even).</summary>
    public static void DecodeFourBitToBFloat16(Index1D pair, ArrayView<byte> packed, ArrayView<float> absmax, ArrayView<float> table,
        int count, int blockSize, ArrayView<ushort> output)
    {
        int i = pair * 2;
        byte b = packed[pair];
        float scale = absmax[i / blockSize];
        output[i] = ToBFloat16(table[b >> 4] * scale);
        if (i + 1 < count) output[i + 1] = ToBFloat16(table[b & 0x0F] * scale);
    }

    /// <summary>One thread per packed byte: two float16 outputs (round to nearest even).</summary>
    public static void DecodeFourBitToHalf(Index1D pair, ArrayView<byte> packed, ArrayView<float> absmax, ArrayView<float> table,
        int count, int blockSize, ArrayView<ushort> output)
    {
        int i = pair * 2;
        byte b = packed[pair];
        float scale = absmax[i / blockSize];
        output[i] = ToHalf(table[b >> 4] * scale);
        if (i + 1 < count) output[i + 1] = ToHalf(table[b & 0x0F] * scale);
    }

    /// <summary>One thread per element: <c>map[code] · absmax</c>.</summary>
    public static void DecodeDynamic(Index1D index, ArrayView<byte> codes, ArrayView<float> absmax, ArrayView<float> table, int blockSize, ArrayView<float> output)
    {
        int i = index;
        output[i] = table[(int)codes[i]] * absmax[i / blockSize];
    }

    private static float AbsMax(ArrayView<float> input, int start, int end)
    {
        float max = 0f;
        for (int i = start; i < end; i++)
        {
            float x = input[i];
            float magnitude = x < 0 ? -x : x;
            if (!(magnitude <= float.MaxValue)) return float.NaN;
            if (magnitude > max) max = magnitude;
        }
        return max < 1e-38f ? 1e-38f : max;
    }

    // Threshold count on x̂ (sorted books, magnitudeCodes empty) or on |x̂| then sign bit (FP4).
    private static int Encode(float scaled, ArrayView<float> thresholds, ArrayView<int> magnitudeCodes, bool signMagnitude)
    {
        float key = signMagnitude && scaled < 0 ? -scaled : scaled;
        int count = 0;
        for (int t = 0; t < (int)thresholds.Length; t++)
            if (key > thresholds[t]) count++;
        if (!signMagnitude) return count;
        int code = magnitudeCodes[count];
        return scaled < 0 ? code | 8 : code;
    }

    // Same integer formulation as FloatBits.SingleToBFloat16.
    private static ushort ToBFloat16(float value)
    {
        uint bits = Interop.FloatAsInt(value);
        if ((bits & 0x7FFF_FFFFu) > 0x7F80_0000u) return (ushort)((bits >> 16) | 0x0040u);
        return (ushort)((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16);
    }

    // Same integer formulation as FloatBits.SingleToHalfBits.
    private static ushort ToHalf(float value)
    {
        uint bits = Interop.FloatAsInt(value);
        uint sign = (bits >> 16) & 0x8000u;
        uint abs = bits & 0x7FFF_FFFFu;
        if (abs > 0x7F80_0000u) return (ushort)(sign | 0x7E00u | ((abs >> 13) & 0x3FFu));
        if (abs >= 0x477F_F000u) return (ushort)(sign | 0x7C00u);
        if (abs >= 0x3880_0000u)
        {
            uint rebased = abs - 0x3800_0000u;
            return (ushort)(sign | ((rebased + 0x0FFFu + ((rebased >> 13) & 1u)) >> 13));
        }
        if (abs < 0x3300_0000u) return (ushort)sign;
        int shift = 126 - (int)(abs >> 23);
        uint mantissa = (abs & 0x7F_FFFFu) | 0x80_0000u;
        uint rounded = mantissa >> shift;
        uint remainder = mantissa & ((1u << shift) - 1u);
        uint half = 1u << (shift - 1);
        if (remainder > half || (remainder == half && (rounded & 1u) != 0)) rounded++;
        return (ushort)(sign | rounded);
    }
}
