using QuantPeft.Memory.Planning;

namespace QuantPeft.Memory.CostModel;

/// <summary>Optimizer memory split by where it lives.</summary>
/// <param name="Device">State bytes resident on the device.</param>
/// <param name="Host">Host share of paged states.</param>
/// <param name="StepTemp">Temporaries the update allocates (under QuantPeft's layer-wise updates: the step after backward, of the tensors not stepped inside it).</param>
/// <param name="InBackwardStepTemp">Under QuantPeft's layer-wise updates, the temporaries of the largest projection's update inside backward (0 otherwise).</param>
public readonly record struct OptimizerBytes(long Device, long Host, long StepTemp, long InBackwardStepTemp = 0);

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

        if (settings.DecodedMomentStep)
        {
            // One tensor at a time, so the largest update decides; layer-wise, the projections (the tensors with a
            // matrix shape) step inside backward and the rest after it.
            long after = 0, inside = 0;
            foreach (TrainableTensor t in set.Tensors)
            {
                long bytes = DecodedStepTemp(t, s);
                if (s.Layerwise && t.IsGaloreMatrix) inside = Math.Max(inside, bytes);
                else after = Math.Max(after, bytes);
            }
            return new OptimizerBytes(device_, host, after, inside);
        }

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

    /// <summary>Elements QuantPeft's 8-bit state codec decodes or encodes at a time (its <c>ChunkElements</c>).</summary>
    public const long CodecChunkElements = 1L << 20;

    /// <summary>
    /// Peak temporaries of one tensor's update under QuantPeft's rules (<see cref="CostSettings.DecodedMomentStep"/>),
    /// counted tensor by tensor from the rules' code (docs/planner.md, "Optimizer step temporaries"), for n elements:
    /// <list type="bullet">
    /// <item>AdamW (any state dtype, and 8-bit AdamW under 4,096 elements): the f32 gradient, m and v: 12n;</item>
    /// <item>8-bit AdamW: the larger of 12n + 20c (decoding v while g and m are alive: int64 codes 8, looked-up values
    /// 4, padded copy 4, scaled 4 bytes per element of a chunk of c = min(n, 2²⁰)) and 8n + 77c (encoding m, signed:
    /// 77 bytes of quantizer temporaries per chunk element beside m and v). The finiteness check runs chunk by chunk
    /// (7c beside g, m and v) and builds no mask for a finite gradient, the case priced;</item>
    /// <item>GaLore, per projected rows×cols matrix with projected size P = r·max(rows, cols) (r·r two-sided) and
    /// projector elements J = r·min(rows, cols) (r·(rows+cols) two-sided): the update 8·rows·cols + 12P + 4J (the f32
    /// parameter copy and back-projected update, beside the projected gradient and both moments), the projector
    /// refresh 8·rows·cols + 4k·(rows+cols) with k = min(rows, cols) (the f32 gradient, LAPACK's column-major copy, U
    /// and Vᴴ; LAPACK's own work array is not counted), and for galore-8bit the moments' 12P + 77·min(P, 2²⁰) (the projected gradient and both moments beside the
    /// encoder's chunk).</item>
    /// </list>
    /// </summary>
    public static long DecodedStepTemp(TrainableTensor t, Strategy s)
    {
        long n = t.Elements;
        bool eightBit = s.Optimizer is OptimizerKind.AdamW8bit or OptimizerKind.PagedAdamW8bit or OptimizerKind.Galore8bit;
        if (!(t.IsGaloreMatrix && UsesGalore(s.Optimizer)))
            return eightBit && n >= Min8bitSize ? EightBitStep(n) : 12 * n;
        long rows = t.Rows, cols = t.Cols, k = Math.Min(rows, cols);
        long r = Math.Min(s.Rank, k);
        bool twoSided = s.Optimizer == OptimizerKind.NaturalGalore;
        long projected = twoSided ? r * r : r * Math.Max(rows, cols);
        long projector = twoSided ? r * (rows + cols) : r * k;
        long update = 8 * rows * cols + 12 * projected + 4 * projector;
        long refresh = 8 * rows * cols + 4 * k * (rows + cols);
        long moments = eightBit && projected >= Min8bitSize ? 12 * projected + 77 * Math.Min(projected, CodecChunkElements) : 0;
        return Math.Max(update, Math.Max(refresh, moments));
    }

    private static long EightBitStep(long n)
    {
        long c = Math.Min(n, CodecChunkElements);
        return Math.Max(12 * n + 20 * c, 8 * n + 77 * c);
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
