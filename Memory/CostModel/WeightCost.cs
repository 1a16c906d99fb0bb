using QuantPeft.Memory.Planning;

namespace QuantPeft.Memory.CostModel;

/// <summary>
/// Bytes of the base weights. Decoder linears take the chosen format; embeddings, the LM head, norms and
/// biases stay bf16 (QLoRA and bitsandbytes leave them unquantized: they are small, or, for the embedding,
/// a lookup that would gain nothing from a 4-bit matmul).
/// </summary>
public static class WeightCost
{
    /// <summary>Block size of the 4-bit formats (bitsandbytes default).</summary>
    public const int FourBitBlock = 64;
    /// <summary>Second-level block of double quantization.</summary>
    public const int DoubleQuantBlock = 256;
    /// <summary>Block size of the blockwise 8-bit weight format.</summary>
    public const int Int8Block = 256;

    /// <summary>Bytes of the base weights under <paramref name="s"/>.</summary>
    public static long BaseWeights(ModelInventory inv, Strategy s)
    {
        long bytes = 2 * (inv.EmbeddingElements + inv.LmHeadElements + inv.NormElements + inv.BiasElements);
        foreach (LinearTensor t in inv.Linears)
            bytes += LinearBytes(t.Elements, s.Weights, s.DoubleQuant, s.LqLoraBits);
        return bytes;
    }

    /// <summary>
    /// Bytes of one quantized (or bf16) matrix of <paramref name="n"/> elements, exactly as stored:
    /// 4-bit: ⌈n/2⌉ packed bytes + one float32 absmax per 64 (4.5 bits/param), or with double quantization
    /// one uint8 absmax per 64 + one float32 per 256 absmax + a float32 offset (4 + 8/64 + 32/16384 = 4.127
    /// bits/param), plus the 16-entry code table (and the 256-entry nested map). int8: n bytes + one float32
    /// absmax per 256 (8.125 bits). LQ-LoRA: the average bit width, which already counts its scales.
    /// </summary>
    public static long LinearBytes(long n, WeightFormat format, bool doubleQuant, double lqBits = 0)
    {
        switch (format)
        {
            case WeightFormat.Bf16:
                return 2 * n;
            case WeightFormat.Int8:
                return n + 4 * Ceil(n, Int8Block) + 256 * 4;
            case WeightFormat.Nf4:
            case WeightFormat.Fp4:
                long blocks = Ceil(n, FourBitBlock);
                long packed = (n + 1) / 2 + 16 * 4;
                return doubleQuant
                    ? packed + blocks + 4 * Ceil(blocks, DoubleQuantBlock) + 4 + 256 * 4
                    : packed + 4 * blocks;
            case WeightFormat.LqLora:
                return (long)Math.Ceiling(n * lqBits / 8.0);
            default:
                throw new ArgumentOutOfRangeException(nameof(format), format, "unknown weight format");
        }
    }

    /// <summary>
    /// Bytes of the bf16 buffer a quantized matmul decodes into: the largest decoder matrix, or with
    /// <paramref name="slabRows"/> (<see cref="CostSettings.DequantSlabRows"/>) its largest slab of min(out, rows)·in.
    /// With <paramref name="deviceSlabElements"/> (a GPU, <see cref="CostSettings.DeviceSlabElements"/>) a projection
    /// decodes max(rows, elements / in) rows at a time, as the runtime sizes its slabs for the device, and the decode is
    /// torch kernels rather than the host codec: for each value, besides its 2 bf16 bytes, half an int32 pair index
    /// (2 bytes) and the f32 value gathered from the pair table (4 bytes) are alive while the slab decodes, 8 bytes in all.
    /// </summary>
    public static long DequantBuffer(ModelInventory inv, Strategy s, int? slabRows = null, long? deviceSlabElements = null) =>
        !s.IsQuantized ? 0
        : slabRows is int rows ? (deviceSlabElements is null ? 2 : 8) * inv.Linears.Max(t => Math.Min(t.Out, SlabRows(rows, t.In, deviceSlabElements)) * t.In)
        : 2 * inv.Linears.Max(t => t.Elements);

    private static long SlabRows(int rows, long columns, long? deviceSlabElements) =>
        deviceSlabElements is long e ? Math.Max(rows, e / Math.Max(1, columns)) : rows;

    /// <summary>
    /// Bytes the loader holds beside the base weights while the largest tensor streams in, on a CPU device (on CUDA
    /// the staging is in host memory and the device never sees it): one tensor as it arrives, in bf16 (2 bytes per
    /// element) when it is kept as it is (a bf16 base; the embedding, LM head and norms of a quantized one), and in
    /// f32 (4 bytes) when it is quantized on arrival, since the quantizer works on an f32 copy. The larger of the two
    /// decides. On the 156M-parameter check shape the live C heap during the load peaked 0.5–1.3 MiB above this
    /// (perf/results/bench-memory-cpu.md).
    /// </summary>
    public static long LoadStaging(ModelInventory inv, Strategy s)
    {
        long linear = inv.Linears.Select(t => t.Elements).DefaultIfEmpty(0).Max();
        long kept = Math.Max(inv.EmbeddingElements, inv.LmHeadElements);
        return s.IsQuantized ? Math.Max(2 * kept, 4 * linear) : 2 * Math.Max(kept, linear);
    }

    internal static long Ceil(long a, long b) => (a + b - 1) / b;
}
