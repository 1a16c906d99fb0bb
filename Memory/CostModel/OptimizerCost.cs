using QuantPeft.Memory.Planning;

namespace QuantPeft.Memory.CostModel;

/// <summary>Optimizer memory split by where it lives.</summary>
/// <param name="Device">State bytes resident on the device.</param>
/// <param name="Host">Host share of paged states.</param>
/// <param name="StepTemp">Temporaries the update allocates.</param>
public readonly record struct OptimizerBytes(long Device, long Host, long StepTemp);

/// <summary>
/// Optimizer states per trainable tensor of n elements:
/// AdamW 2·n·b (b = 4 for fp32 states, 2 for bf16 states);
/// 8-bit AdamW 2·n + 2·4·⌈n/256⌉ (uint8 m and v, one float32 absmax per 256 for each), with tensors under
/// 4,096 elements kept in fp32 as bitsandbytes does;
/// GaLore, per projected m×n matrix (m ≤ n, rank r ≤ m): the projector m·r in bf16 plus moments 2·n·r
/// (in the state dtype, or 8-bit for galore-8bit); tensors GaLore does not project use AdamW (8-bit AdamW
/// for galore-8bit, as GaLore's Table 11 runs do);
/// Natural GaLore: two-sided projectors (m + n)·r in bf16, moments 2·r², and a history of s flattened r×r
/// gradients in fp32.
/// Paged variants keep every state buffer of ≥ 10⁵ elements in unified memory (bitsandbytes' threshold):
/// under memory pressure the driver evicts it to the host, so the host must hold all of it, and the device
/// needs only the buffer being updated (the largest one) plus the small, unpaged states.
/// </summary>
public static class OptimizerCost
{
    /// <summary>Block of the 8-bit states.</summary>
    public const int StateBlock = 256;
    /// <summary>bitsandbytes keeps smaller tensors in 32-bit states.</summary>
    public const long Min8bitSize = 4096;
    /// <summary>bitsandbytes pages only buffers at least this large.</summary>
    public const long MinPagedSize = 100_000;

    /// <summary>Prices the optimizer of <paramref name="s"/> over <paramref name="set"/>.</summary>
    public static OptimizerBytes Estimate(TrainableSet set, Strategy s, CostSettings settings, DeviceKind device)
    {
        long device_ = 0, host = 0, largestPaged = 0, largestTensor = 0, totalTrainable = 0;
        long galoreTemp = 0;
        bool paged = s.IsPaged && device == DeviceKind.Cuda;
        foreach (TrainableTensor t in set.Tensors)
        {
            long bytes = StateBytes(t, s, settings);
            totalTrainable += t.Elements;
            largestTensor = Math.Max(largestTensor, t.Elements);
            if (paged && t.Elements >= MinPagedSize)
            {
                host += bytes;
                largestPaged = Math.Max(largestPaged, bytes);
            }
            else device_ += bytes;
            if (t.IsGaloreMatrix && UsesGalore(s.Optimizer))
                galoreTemp = Math.Max(galoreTemp, 2 * t.Rows * t.Cols);
        }
        device_ += largestPaged;

        // The update's temporaries: sqrt(v) (+eps) in the state dtype, for all tensors at once when the step
        // runs multi-tensor, else for one tensor; GaLore also back-projects one full-size update in bf16.
        // 8-bit kernels update in registers and allocate nothing.
        long temp = s.Optimizer switch
        {
            OptimizerKind.AdamW or OptimizerKind.PagedAdamW => settings.AdamStateBytes *
                (settings.ForeachAdamW && !s.Layerwise ? totalTrainable : largestTensor),
            OptimizerKind.Galore or OptimizerKind.NaturalGalore => galoreTemp + settings.AdamStateBytes * ProjectedLargest(set, s),
            OptimizerKind.Galore8bit => galoreTemp,
            _ => 0,
        };
        return new OptimizerBytes(device_, host, temp);
    }

    /// <summary>State bytes of one tensor.</summary>
    public static long StateBytes(TrainableTensor t, Strategy s, CostSettings settings)
    {
        long n = t.Elements;
        int b = settings.AdamStateBytes;
        switch (s.Optimizer)
        {
            case OptimizerKind.AdamW:
            case OptimizerKind.PagedAdamW:
                return 2 * n * b;
            case OptimizerKind.AdamW8bit:
            case OptimizerKind.PagedAdamW8bit:
                return EightBit(n);
            case OptimizerKind.Galore:
                return t.IsGaloreMatrix ? Galore(t, s.Rank, momentBytes: m => 2 * m * b) : 2 * n * b;
            case OptimizerKind.Galore8bit:
                return t.IsGaloreMatrix ? Galore(t, s.Rank, momentBytes: m => 2 * m + 8 * WeightCost.Ceil(m, StateBlock)) : EightBit(n);
            case OptimizerKind.NaturalGalore:
                if (!t.IsGaloreMatrix) return 2 * n * b;
                long r = Math.Min(s.Rank, Math.Min(t.Rows, t.Cols));
                return 2 * (t.Rows + t.Cols) * r + 2 * r * r * b + 4L * settings.NaturalGaloreHistory * r * r;
            default:
                throw new ArgumentOutOfRangeException(nameof(s), s.Optimizer, "unknown optimizer");
        }
    }

    private static long EightBit(long n) => n < Min8bitSize ? 8 * n : 2 * n + 8 * WeightCost.Ceil(n, StateBlock);

    private static long Galore(TrainableTensor t, int rank, Func<long, long> momentBytes)
    {
        long m = Math.Min(t.Rows, t.Cols), n = Math.Max(t.Rows, t.Cols);
        long r = Math.Min(rank, m);
        return 2 * m * r + momentBytes(n * r);
    }

    private static long ProjectedLargest(TrainableSet set, Strategy s) =>
        set.Tensors.Where(t => t.IsGaloreMatrix).Select(t => Math.Max(t.Rows, t.Cols) * Math.Min(s.Rank, Math.Min(t.Rows, t.Cols)))
            .DefaultIfEmpty(0).Max();

    private static bool UsesGalore(OptimizerKind o) => o is OptimizerKind.Galore or OptimizerKind.Galore8bit or OptimizerKind.NaturalGalore;
}
