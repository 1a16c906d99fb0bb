namespace QuantPeft.Quant.Codecs;

/// <summary>The two 4-bit data types of bitsandbytes; the name is the <c>quant_type</c> string it writes.</summary>
public enum FourBitType
{
    /// <summary>NormalFloat4 (<c>"nf4"</c>): a 16-entry lookup table of normal quantiles.</summary>
    Nf4,

    /// <summary>bitsandbytes' FP4 (<c>"fp4"</c>): sign bit plus 3 magnitude bits, see <see cref="CodeTables.Fp4"/>.</summary>
    Fp4,
}
