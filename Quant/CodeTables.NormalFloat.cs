using QuantPeft.Quant.Codecs;

namespace QuantPeft.Quant;

public static partial class CodeTables
{
    /// <summary>The probability whose normal quantile becomes the code value 1 (QLoRA's NF4 offset, also used by LQ-LoRA for every bit width).</summary>
    public const float NormalFloatOffset = 0.9677083f;

    private static readonly Lazy<float[]>[] NormalFloatCache =
        [.. Enumerable.Range(0, 9).Select(bits => new Lazy<float[]>(() => bits == 4 ? Nf4Values : CreateNormalFloatMap(bits)))];

    /// <summary>NormalFloat2 (LQ-LoRA): 4 values, <see cref="CreateNormalFloatMap"/> with 2 bits.</summary>
    public static ReadOnlySpan<float> Nf2 => NormalFloat(2);

    /// <summary>NormalFloat3 (LQ-LoRA): 8 values, <see cref="CreateNormalFloatMap"/> with 3 bits.</summary>
    public static ReadOnlySpan<float> Nf3 => NormalFloat(3);

    /// <summary>
    /// The NormalFloat-k table for k = 2..8, sorted ascending (index = code). For k = 4 this is the published
    /// NF4 table (<see cref="Nf4"/>), which <see cref="CreateNormalFloatMap"/> reproduces to about 1e-7.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">bits is outside 2..8.</exception>
    public static ReadOnlySpan<float> NormalFloat(int bits)
    {
        if (bits is < 2 or > 8) throw new ArgumentOutOfRangeException(nameof(bits), bits, "NormalFloat tables exist for 2..8 bits");
        return NormalFloatCache[bits].Value;
    }

    /// <summary>
    /// Builds the 2^k-entry NormalFloat table the way bitsandbytes' <c>create_normal_map</c> builds NF4,
    /// generalised to k bits.
    /// </summary>
    /// <remarks>
    /// <para>Generalisation chosen (it is LQ-LoRA's <c>create_normal_float_scheme</c>, which for k = 4 is
    /// mathematically the same set as bnb's NF4): with <c>h = 2^(k−1)</c> and <c>o = 0.9677083</c>,
    /// positives are <c>Φ⁻¹(p)</c> for p in <c>linspace(o, 0.5, h+1)</c> without its final 0.5 (h values),
    /// negatives are <c>−Φ⁻¹(p)</c> for p in <c>linspace(o, 0.5, h)</c> without its final 0.5 (h−1 values),
    /// plus one exact 0; all are divided by the largest, <c>Φ⁻¹(o)</c>. The table is asymmetric like NF4:
    /// it holds both −1 and +1 and one more positive than negative value.</para>
    /// <para>Precision follows bnb: the linspace is float32 (torch's), Φ⁻¹ is float64 (scipy's
    /// <c>norm.ppf</c>; here <see cref="InverseNormalCdf"/>), each quantile is rounded to float32, and the
    /// division by the maximum is done in float32. LQ-LoRA evaluates Φ⁻¹ in float32 through
    /// <c>torch.distributions.Normal.icdf</c>, so its own tables can differ from these in the last few ulps.</para>
    /// </remarks>
    /// <exception cref="ArgumentOutOfRangeException">bits is outside 2..8.</exception>
    public static float[] CreateNormalFloatMap(int bits)
    {
        if (bits is < 2 or > 8) throw new ArgumentOutOfRangeException(nameof(bits), bits, "NormalFloat tables exist for 2..8 bits");
        int half = 1 << (bits - 1);
        var values = new List<float>(1 << bits);
        float[] positive = TorchLinspace(NormalFloatOffset, 0.5f, half + 1);
        for (int i = 0; i < half; i++) values.Add((float)InverseNormalCdf.Evaluate(positive[i]));
        float[] negative = TorchLinspace(NormalFloatOffset, 0.5f, half);
        for (int i = 0; i < half - 1; i++) values.Add((float)-InverseNormalCdf.Evaluate(negative[i]));
        values.Add(0f);
        values.Sort();
        float max = values[^1];
        return [.. values.Select(v => v / max)];
    }
}
