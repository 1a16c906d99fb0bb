namespace QuantPeft.Quant;

/// <summary>
/// The code tables (index → value) of the bitsandbytes-compatible quantizers. A code is an index into
/// one of these tables, not a float encoding, so the same bytes mean the same numbers here and in
/// bitsandbytes only if these tables are bit-identical to its own.
/// </summary>
public static partial class CodeTables
{
    private static readonly float[] Nf4Values =
    [
        -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,
        -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f,
        0.07958029955625534f, 0.16093020141124725f, 0.24611230194568634f, 0.33791524171829224f,
        0.44070982933044434f, 0.5626170039176941f, 0.7229568362236023f, 1.0f,
    ];

    // bitsandbytes' CUDA FP4 lookup table (sign bit 0b1000, 3 magnitude bits), divided by 12.
    // Not regenerated from create_fp8_map(e=2, p=1): that would give a different subnormal.
    private static readonly float[] Fp4Values =
    [
        0f, 0.0625f / 12f, 8f / 12f, 12f / 12f, 4f / 12f, 6f / 12f, 2f / 12f, 3f / 12f,
        -0f, -0.0625f / 12f, -8f / 12f, -12f / 12f, -4f / 12f, -6f / 12f, -2f / 12f, -3f / 12f,
    ];

    // bitsandbytes' CUDA decision constants (dQuantizeNF4, dQuantizeFP4), compared with a strict ">". They are
    // literals, not derived midpoints: 0.583333f is not the float nearest 7/12, so deriving the midpoints
    // would put some values in a different code than bitsandbytes does. Every quantizer here uses these.
    private static readonly float[] Nf4ThresholdValues =
    [
        -0.8480964004993439f, -0.6106329262256622f, -0.4599952697753906f, -0.33967943489551544f,
        -0.23460740596055984f, -0.13791173323988914f, -0.045525018125772476f, 0.03979014977812767f,
        0.1202552504837513f, 0.2035212516784668f, 0.2920137718319893f, 0.3893125355243683f,
        0.5016634166240692f, 0.6427869200706482f, 0.8614784181118011f,
    ];

    private static readonly float[] Fp4MagnitudeThresholdValues =
        [0.00260417f, 0.0859375f, 0.20833333f, 0.29166667f, 0.4166667f, 0.583333f, 0.8333333f];

    private static readonly Lazy<float[]> SignedDynamic = new(() => CreateDynamicMap(signed: true));
    private static readonly Lazy<float[]> UnsignedDynamic = new(() => CreateDynamicMap(signed: false));

    /// <summary>The 16 NF4 values (QLoRA's NormalFloat4), index = 4-bit code.</summary>
    public static ReadOnlySpan<float> Nf4 => Nf4Values;

    /// <summary>The 16 FP4 values of bitsandbytes (E2M1 variant with a 0.0625/12 subnormal), index = 4-bit code.</summary>
    public static ReadOnlySpan<float> Fp4 => Fp4Values;

    /// <summary>The 15 NF4 decision thresholds of bitsandbytes, ascending: the code of x̂ is the count of thresholds below it.</summary>
    public static ReadOnlySpan<float> Nf4Thresholds => Nf4ThresholdValues;

    /// <summary>The 7 FP4 decision thresholds of bitsandbytes on |x̂|, ascending, between the sorted magnitudes 0 … 1.</summary>
    public static ReadOnlySpan<float> Fp4MagnitudeThresholds => Fp4MagnitudeThresholdValues;

    /// <summary>The 256-entry signed dynamic (tree) map: index 127 = 0, index 255 = 1, no −1.</summary>
    public static ReadOnlySpan<float> DynamicSigned => SignedDynamic.Value;

    /// <summary>The 256-entry unsigned dynamic map: index 0 = 0, index 255 = 1.</summary>
    public static ReadOnlySpan<float> DynamicUnsigned => UnsignedDynamic.Value;

    /// <summary>
    /// Builds bitsandbytes' dynamic map (<c>create_dynamic_map(signed, max_exponent_bits=7, total_bits=8)</c>)
    /// in float32 arithmetic, following torch's <c>linspace</c> so that every value is bit-identical.
    /// </summary>
    /// <remarks>
    /// For exponent i = 0..6 the fraction values are the midpoints of <c>linspace(0.1, 1, k+1)</c> scaled
    /// by <c>10^(i−6)</c>, with k = 2^i (signed, mirrored to negatives) or 2^(i+1) (unsigned). Adding 0 and
    /// 1 gives 256 values, which are sorted.
    /// </remarks>
    public static float[] CreateDynamicMap(bool signed)
    {
        var data = new List<float>(256);
        for (int i = 0; i < 7; i++)
        {
            int fractionItems = signed ? (1 << i) + 1 : (1 << (i + 1)) + 1;
            float[] boundaries = TorchLinspace(0.1f, 1f, fractionItems);
            float scale = (float)Math.Pow(10, i - 6);
            for (int j = 0; j + 1 < boundaries.Length; j++)
            {
                float mean = (boundaries[j] + boundaries[j + 1]) / 2.0f;
                data.Add(scale * mean);
                if (signed) data.Add(-scale * mean);
            }
        }
        data.Add(0f);
        data.Add(1.0f);
        data.Sort();
        return [.. data];
    }

    // torch's CPU linspace for float32: the first half counts up from start, the second down from end.
    private static float[] TorchLinspace(float start, float end, int steps)
    {
        var result = new float[steps];
        float step = (end - start) / (steps - 1);
        int halfway = steps / 2;
        for (int i = 0; i < steps; i++)
            result[i] = i < halfway ? start + step * i : end - step * (steps - i - 1);
        return result;
    }
}
