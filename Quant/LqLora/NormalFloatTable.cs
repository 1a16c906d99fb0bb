namespace QuantPeft.Quant.LqLora;

/// <summary>
/// k-bit NormalFloat code tables (NF-k) built like bitsandbytes' <c>create_normal_map(offset=0.9677083)</c>:
/// 2^(k−1) positive normal quantiles, 2^(k−1)−1 negative ones and an exact 0, divided by the largest.
/// </summary>
/// <remarks>
/// Positive values are <c>Φ⁻¹(p)</c> for <c>p = linspace(offset, 0.5, 2^(k−1)+1)</c> without its final 0.5;
/// negative values are <c>−Φ⁻¹(p)</c> for <c>p = linspace(offset, 0.5, 2^(k−1))</c> without its final 0.5.
/// For k = 4 this reproduces <see cref="CodeTables.Nf4"/> (to ~1e−7). LQ-LoRA's own scheme
/// (<c>create_normal_float_scheme</c>) places the same quantiles, scaled so that Φ⁻¹(offset) = 1.
/// </remarks>
public static class NormalFloatTable
{
    /// <summary>QLoRA's offset: 1 − ½(1/30 + 1/32), the outermost quantile.</summary>
    public const double Offset = 0.9677083;

    /// <summary>The 2^k ascending values of NF-k, in [−1, 1] with both ends present.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="bits"/> is not 1 &lt; bits ≤ 8.</exception>
    public static float[] Create(int bits)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(bits, 2);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(bits, 8);
        int half = 1 << (bits - 1);
        var values = new List<double>(2 * half) { 0.0 };
        for (int i = 0; i < half; i++) // linspace(offset, 0.5, half + 1), last point dropped
            values.Add(InverseNormalCdf(Offset + (0.5 - Offset) * i / half));
        for (int i = 0; i < half - 1; i++) // linspace(offset, 0.5, half), last point dropped
            values.Add(-InverseNormalCdf(Offset + (0.5 - Offset) * i / (half - 1)));
        values.Sort();
        double max = values[^1];
        return values.Select(v => (float)(v / max)).ToArray();
    }

    /// <summary>
    /// The standard normal quantile Φ⁻¹(p), Wichura's algorithm AS 241 (PPND16), accurate to about 1e−16.
    /// </summary>
    public static double InverseNormalCdf(double p)
    {
        if (p <= 0 || p >= 1) throw new ArgumentOutOfRangeException(nameof(p), p, "must lie strictly between 0 and 1");
        double q = p - 0.5;
        if (Math.Abs(q) <= 0.425)
        {
            double r = 0.180625 - q * q;
            return q * (((((((r * 2509.0809287301226727 + 33430.575583588128105) * r + 67265.770927008700853) * r
                        + 45921.953931549871457) * r + 13731.693765509461125) * r + 1971.5909503065514427) * r
                        + 133.14166789178437745) * r + 3.387132872796366608)
                   / (((((((r * 5226.495278852545925 + 28729.085735721942674) * r + 39307.89580009271061) * r
                        + 21213.794301586595867) * r + 5394.1960214247511077) * r + 687.1870074920579083) * r
                        + 42.313330701600911252) * r + 1.0);
        }
        double t = Math.Sqrt(-Math.Log(q < 0 ? p : 1 - p));
        double value;
        if (t <= 5)
        {
            t -= 1.6;
            value = (((((((t * 7.7454501427834140764e-4 + 0.0227238449892691845833) * t + 0.24178072517745061177) * t
                      + 1.27045825245236838258) * t + 3.64784832476320460504) * t + 5.7694972214606914055) * t
                      + 4.6303378461565452959) * t + 1.42343711074968357734)
                  / (((((((t * 1.05075007164441684324e-9 + 5.475938084995344946e-4) * t + 0.0151986665636164571966) * t
                      + 0.14810397642748007459) * t + 0.68976733498510000455) * t + 1.6763848301838038494) * t
                      + 2.05319162663775882187) * t + 1.0);
        }
        else
        {
            t -= 5;
            value = (((((((t * 2.01033439929228813265e-7 + 2.71155556874348757815e-5) * t + 0.0012426609473880784386) * t
                      + 0.026532189526576123093) * t + 0.29656057182850489123) * t + 1.7848265399172913358) * t
                      + 5.4637849111641143699) * t + 6.6579046435011037772)
                  / (((((((t * 2.04426310338993978564e-15 + 1.4215117583164458887e-7) * t + 1.8463183175100546818e-5) * t
                      + 7.868691311456132591e-4) * t + 0.0148753612908506148525) * t + 0.13692988092273580531) * t
                      + 0.59983220655588793769) * t + 1.0);
        }
        return q < 0 ? -value : value;
    }
}
