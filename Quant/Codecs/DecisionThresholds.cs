namespace QuantPeft.Quant.Codecs;

/// <summary>
/// Nearest-code rounding expressed as a count of thresholds, the one formulation that the scalar reference
/// and the SIMD kernels both evaluate identically.
/// </summary>
/// <remarks>
/// <para>For a strictly increasing table <c>c[0..m)</c> the nearest code to a float32 <c>x</c>, with a value exactly
/// halfway going to the <b>lower</b> code, is <c>#{ i : x &gt; mid_i }</c> where <c>mid_i = (c[i] + c[i+1]) / 2</c>
/// is evaluated in exact arithmetic. The exact midpoint of two floats need not be a float, so each threshold is
/// stored as the largest float32 <c>t_i ≤ mid_i</c>: for float32 <c>x</c>, <c>x &gt; mid_i ⇔ x &gt; t_i</c>
/// (if <c>mid_i</c> is a float they are equal; otherwise the next float above <c>t_i</c> is already above
/// <c>mid_i</c>). The result is the exact nearest code, with no dependence on how a backend rounds
/// <c>|x − c|</c>, which is why it is used instead of bitsandbytes' <c>argmin(|x − c|)</c> (that argmin can
/// pick the farther code by one ulp near a midpoint, and its FP4 ties depend on table order).</para>
/// <para>The count is an integer function of <c>x</c>, so a linear scan, a binary search and a bucketed lookup
/// give the same code by construction.</para>
/// </remarks>
public static class DecisionThresholds
{
    /// <summary>Thresholds <c>t_i</c> (length m−1) for a strictly increasing table of m codes.</summary>
    /// <exception cref="ArgumentException">The table is not strictly increasing, or has fewer than 2 entries.</exception>
    public static float[] ForSortedTable(ReadOnlySpan<float> sortedCodes)
    {
        if (sortedCodes.Length < 2) throw new ArgumentException("a code table needs at least 2 entries", nameof(sortedCodes));
        var thresholds = new float[sortedCodes.Length - 1];
        for (int i = 0; i + 1 < sortedCodes.Length; i++)
        {
            if (!(sortedCodes[i] < sortedCodes[i + 1]))
                throw new ArgumentException($"code table is not strictly increasing at index {i}", nameof(sortedCodes));
            // Two float32 values with nearby exponents add exactly in float64, so this is the exact midpoint.
            double mid = ((double)sortedCodes[i] + sortedCodes[i + 1]) * 0.5;
            float t = (float)mid;
            if (t > mid) t = MathF.BitDecrement(t);
            thresholds[i] = t;
        }
        return thresholds;
    }

    /// <summary>The code index for <paramref name="x"/>: how many thresholds lie strictly below it.</summary>
    public static int Count(float x, ReadOnlySpan<float> thresholds)
    {
        int count = 0;
        for (int i = 0; i < thresholds.Length; i++)
            if (x > thresholds[i]) count++;
        return count;
    }
}
