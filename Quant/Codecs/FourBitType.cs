namespace QuantPeft.Quant.Codecs;

/// <summary>
/// The code book of a 4-bit weight, bitsandbytes' <c>quant_type</c> (the name is the string it writes): which 16 values
/// the 4-bit codes stand for. Every 4-bit path uses it, the host codecs here and the tensor form in <c>Quant/Torch</c>.
/// </summary>
/// <remarks>
/// This is not how a base is stored. That choice (bf16, blockwise int8, NF4, FP4, LQ-LoRA) is the planner's
/// <c>WeightFormat</c> in QuantPeft.Memory, a layer above; an NF4 or FP4 <c>WeightFormat</c> selects one of these code books.
/// The two stay apart because the codecs must build without the planner (perf/GpuCodecCheck compiles them alone).
/// </remarks>
public enum FourBitType
{
    /// <summary>NormalFloat4 (<c>"nf4"</c>): a 16-entry lookup table of normal quantiles; QLoRA's default.</summary>
    Nf4,

    /// <summary>bitsandbytes' FP4 (<c>"fp4"</c>): sign bit 0b1000 plus 3 magnitude bits, see <see cref="CodeTables.Fp4"/>.</summary>
    Fp4,
}
