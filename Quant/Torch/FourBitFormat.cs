namespace QuantPeft.Quant.Torch;

/// <summary>The two 4-bit code tables of bitsandbytes' <c>quantize_4bit</c>.</summary>
public enum FourBitFormat
{
    /// <summary>NormalFloat4 (<see cref="CodeTables.Nf4"/>); QLoRA's default data type.</summary>
    Nf4,

    /// <summary>bitsandbytes' FP4 (<see cref="CodeTables.Fp4"/>): sign bit 0b1000 plus three magnitude bits.</summary>
    Fp4,
}
