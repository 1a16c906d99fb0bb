namespace QuantPeft.Quant.LqLora;

/// <summary>How LQ-LoRA stores the second-level (per group of <c>B1</c> scales) absmax.</summary>
public enum SecondLevelStorage
{
    /// <summary>bfloat16, 16 bits.</summary>
    BFloat16,

    /// <summary>float16, 16 bits.</summary>
    Float16,

    /// <summary>float32, 32 bits.</summary>
    Float32,
}

/// <summary>
/// One LQ-LoRA quantization configuration <c>(b, b0, b1, B0, B1)</c>: NF-b data, first-level absmax per
/// <c>B0</c> elements quantized to b0-bit unsigned integers per group of <c>B1</c> scales (after subtracting the
/// global minimum), and the group's absmax stored in <c>b1</c>.
/// </summary>
/// <param name="Bits">b: bits per weight (NF-b).</param>
/// <param name="ScaleBits">b0: bits per first-level scale.</param>
/// <param name="SecondLevel">b1: storage of the second-level scale.</param>
/// <param name="BlockSize0">B0: weights per first-level scale.</param>
/// <param name="BlockSize1">B1: first-level scales per second-level scale.</param>
public sealed record LqQuantConfig(int Bits, int ScaleBits, SecondLevelStorage SecondLevel, int BlockSize0, int BlockSize1)
{
    /// <summary>The block-group size every search-space config divides: 64 · 256, the largest B0 · B1.</summary>
    public const int GroupElements = 16384;

    /// <summary>Bits of <see cref="SecondLevel"/>.</summary>
    public int SecondLevelBits => SecondLevel == SecondLevelStorage.Float32 ? 32 : 16;

    /// <summary>Storage in bits per weight: <c>b + b0/B0 + b1/(B0·B1)</c>.</summary>
    public double BitsPerParameter => (double)BitsPerGroup / GroupElements;

    /// <summary>
    /// Exact storage of <see cref="GroupElements"/> weights in bits, an integer:
    /// <c>16384·b + b0·16384/B0 + b1·16384/(B0·B1)</c>. The allocator counts in these units so that its
    /// knapsack is exact.
    /// </summary>
    public long BitsPerGroup =>
        (long)Bits * GroupElements + (long)ScaleBits * (GroupElements / BlockSize0)
        + (long)SecondLevelBits * (GroupElements / (BlockSize0 * BlockSize1));

    /// <summary>QLoRA's NF4 with double quantization expressed in this space: (4, 8, fp32, 64, 256), 4.127 bits.</summary>
    public static LqQuantConfig Nf4DoubleQuant { get; } = new(4, 8, SecondLevelStorage.Float32, 64, 256);

    /// <summary>
    /// The 432 configurations of LQ-LoRA's ILP: b ∈ {2,3,4,8} × b0 ∈ {2,3,4,8} × b1 ∈ {bf16, fp16, fp32}
    /// × B0 ∈ {16,32,64} × B1 ∈ {16,64,256}.
    /// </summary>
    public static IReadOnlyList<LqQuantConfig> SearchSpace { get; } = BuildSearchSpace();

    /// <inheritdoc />
    public override string ToString() => $"NF{Bits}(b0={ScaleBits}, b1={SecondLevel}, B0={BlockSize0}, B1={BlockSize1})";

    private static List<LqQuantConfig> BuildSearchSpace()
    {
        var result = new List<LqQuantConfig>(432);
        foreach (int b in new[] { 2, 3, 4, 8 })
            foreach (int b0 in new[] { 2, 3, 4, 8 })
                foreach (var b1 in new[] { SecondLevelStorage.BFloat16, SecondLevelStorage.Float16, SecondLevelStorage.Float32 })
                    foreach (int block0 in new[] { 16, 32, 64 })
                        foreach (int block1 in new[] { 16, 64, 256 })
                            result.Add(new LqQuantConfig(b, b0, b1, block0, block1));
        return result;
    }
}
