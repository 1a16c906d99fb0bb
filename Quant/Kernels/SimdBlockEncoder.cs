using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using QuantPeft.Quant.Codecs;

namespace QuantPeft.Quant.Kernels;

/// <summary>
/// Vectorised per-block encode steps: the absmax and the threshold count. Both are exact operations
/// (max of magnitudes; one IEEE multiply by the block's reciprocal, then comparisons), so the vector results
/// equal the scalar reference's bit for bit; tails fall back to <see cref="CodeBook.Encode"/> itself.
/// </summary>
internal static unsafe class SimdBlockEncoder
{
    /// <summary><see cref="BlockScale.AbsMax"/> over <c>values[0..length)</c>, vectorised.</summary>
    public static float AbsMax(float* values, int length, long firstIndex)
    {
        int i = 0;
        float max = 0f;
        if (Vector512.IsHardwareAccelerated && length >= 16)
        {
            Vector512<float> maxVector = Vector512<float>.Zero;
            Vector512<float> finite = Vector512<float>.AllBitsSet;
            for (; i + 16 <= length; i += 16)
            {
                Vector512<float> magnitude = Vector512.Abs(Vector512.Load(values + i));
                finite &= Vector512.LessThanOrEqual(magnitude, Vector512.Create(float.MaxValue));
                maxVector = Vector512.Max(maxVector, magnitude);
            }
            if (finite.AsUInt32() != Vector512<uint>.AllBitsSet) BlockScale.ThrowNonFinite(new ReadOnlySpan<float>(values, length), firstIndex);
            for (int lane = 0; lane < 16; lane++) if (maxVector[lane] > max) max = maxVector[lane];
        }
        else if (Vector256.IsHardwareAccelerated && length >= 8)
        {
            Vector256<float> maxVector = Vector256<float>.Zero;
            Vector256<float> finite = Vector256<float>.AllBitsSet;
            for (; i + 8 <= length; i += 8)
            {
                Vector256<float> magnitude = Vector256.Abs(Vector256.Load(values + i));
                finite &= Vector256.LessThanOrEqual(magnitude, Vector256.Create(float.MaxValue));
                maxVector = Vector256.Max(maxVector, magnitude);
            }
            if (finite.AsUInt32() != Vector256<uint>.AllBitsSet) BlockScale.ThrowNonFinite(new ReadOnlySpan<float>(values, length), firstIndex);
            for (int lane = 0; lane < 8; lane++) if (maxVector[lane] > max) max = maxVector[lane];
        }
        for (; i < length; i++)
        {
            float magnitude = MathF.Abs(values[i]);
            if (!(magnitude <= float.MaxValue)) BlockScale.ThrowNonFinite(new ReadOnlySpan<float>(values, length), firstIndex);
            if (magnitude > max) max = magnitude;
        }
        return max < BlockScale.MinAbsMax ? BlockScale.MinAbsMax : max;
    }

    /// <summary>Codes of 16 values (x · inverse) under a sorted book or FP4, as 16 int32 lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<int> Codes16(float* values, float inverse, float* thresholds, int thresholdCount, int* magnitudeCodes)
    {
        Vector512<float> scaled = Vector512.Load(values) * Vector512.Create(inverse);
        Vector512<float> key = magnitudeCodes == null ? scaled : Vector512.Abs(scaled);
        Vector512<int> count = Vector512<int>.Zero;
        for (int t = 0; t < thresholdCount; t++)
            count -= Vector512.GreaterThan(key, Vector512.Create(thresholds[t])).AsInt32();
        if (magnitudeCodes == null) return count;
        Vector512<int> magnitude = Vector512.Shuffle(Vector512.Load(magnitudeCodes), count);
        return magnitude | (Vector512.LessThan(scaled, Vector512<float>.Zero).AsInt32() & Vector512.Create(8));
    }

    /// <summary>Codes of 8 values (x · inverse), as 8 int32 lanes (the Vector256 path).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> Codes8(float* values, float inverse, float* thresholds, int thresholdCount, int* magnitudeCodes)
    {
        Vector256<float> scaled = Vector256.Load(values) * Vector256.Create(inverse);
        Vector256<float> key = magnitudeCodes == null ? scaled : Vector256.Abs(scaled);
        Vector256<int> count = Vector256<int>.Zero;
        for (int t = 0; t < thresholdCount; t++)
            count -= Vector256.GreaterThan(key, Vector256.Create(thresholds[t])).AsInt32();
        if (magnitudeCodes == null) return count;
        Vector256<int> magnitude = Vector256.Shuffle(Vector256.Load(magnitudeCodes), count);
        return magnitude | (Vector256.LessThan(scaled, Vector256<float>.Zero).AsInt32() & Vector256.Create(8));
    }
}
