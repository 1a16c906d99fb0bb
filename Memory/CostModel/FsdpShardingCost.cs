using QuantPeft.Memory.Planning;

namespace QuantPeft.Memory.CostModel;

/// <summary>
/// Prices one rank of a plan run by a multi-GPU engine under FSDP full sharding (docs/planner.md, "Hand-off to a
/// multi-GPU engine"). The model is split into FSDP units as the engines wrap it: one per decoder layer, the root unit
/// (embedding, LM head, final norm) and, for adapters, each adapter matrix on its own (PEFT's wrapping policy).
/// <list type="bullet">
/// <item><b>Sharded, per rank:</b> each unit's flat parameter padded to a multiple of N elements and cut in N; a 4-bit
/// unit shards its packed bytes (FSDP-QLoRA stores them in a bf16 tensor so FSDP can flatten them); trained
/// parameters' gradients and AdamW moments (2 per element) in the master dtype (<see cref="FsdpPrecision"/>).</item>
/// <item><b>Replicated:</b> the 4-bit quantization state (absmax, nested absmax, code tables), which bitsandbytes keeps
/// beside the weight rather than in it, so FSDP neither shards nor offloads it.</item>
/// <item><b>Gathered while running:</b> the root unit, which FSDP does not reshard after forward because backward
/// starts with it, plus one decoder layer (two under backward prefetch) with its adapters, all in bf16.</item>
/// <item><b>Communication:</b> the gradient reduce-scatter of the largest trained unit: its unsharded bf16 gradient as
/// input and its 1/N shard as output. The all-gather writes straight into the gathered copy (counted above). NCCL's own
/// staging (a few MiB per channel and peer) is allocated outside PyTorch's allocator and left in the runtime overhead.</item>
/// <item><b>Per micro-batch:</b> activations of this rank's micro-batch (<see cref="ActivationCost"/>, unchanged by
/// sharding) and one dequantized matrix.</item>
/// </list>
/// The peak is the larger of backward (all of the above) and the optimizer step (resident shards and the step's
/// temporaries). With parameter offload the shards, gradients and moments move to the host and the step runs there.
/// </summary>
public static class FsdpShardingCost
{
    /// <summary>Prices one rank of <paramref name="s"/> sharded as <paramref name="layout"/>.</summary>
    /// <param name="inv">The model.</param>
    /// <param name="s">The strategy; its batch is the micro-batch of one rank.</param>
    /// <param name="w">The workload.</param>
    /// <param name="budget">Overhead and fragmentation of one rank.</param>
    /// <param name="layout">Ranks and offload.</param>
    /// <param name="precision">Master dtypes and prefetching of the engine.</param>
    /// <param name="settings">What the engine's modules keep for backward (activations, logits, optimizer temporaries).</param>
    public static ShardedEstimate Estimate(ModelInventory inv, Strategy s, Workload w, Budget budget, FsdpLayout layout,
        FsdpPrecision precision, CostSettings settings)
    {
        int n = layout.Gpus;
        TrainableSet set = TrainableSet.Build(inv, s);

        long root = RootUnitBytes(inv);
        long[] layers = Enumerable.Range(0, inv.Layers.Count).Select(l => LayerUnitBytes(inv, s, l)).ToArray();
        long shardedWeights = ShardBytes(root, n) + layers.Sum(b => ShardBytes(b, n));
        long quantState = QuantStateBytes(inv, s);

        // Trained elements by unit; an adapter matrix is its own FSDP unit, a full-parameter layer is its decoder unit.
        int master = s.IsAdapterMethod ? precision.AdapterMasterBytes : precision.FullMasterBytes;
        long shardElements = s.IsAdapterMethod
            ? set.Tensors.Sum(t => ShardElements(t.Elements, n))
            : set.Tensors.GroupBy(t => t.Unit).Sum(g => ShardElements(g.Sum(t => t.Elements), n));
        long adapterShards = s.IsAdapterMethod ? master * shardElements : 0;
        long gradients = master * shardElements;
        long states = 2L * master * shardElements;
        // PyTorch's multi-tensor AdamW materialises sqrt(v) for every local shard at once; otherwise one tensor at a time.
        long largestShard = set.Tensors.GroupBy(t => s.IsAdapterMethod ? (object)t : t.Unit)
            .Select(g => ShardElements(g.Sum(t => t.Elements), n)).DefaultIfEmpty(0).Max();
        long stepTemp = master * (settings.ForeachAdamW ? shardElements : largestShard);

        // Unsharded while running: the root unit, then one decoder layer (two with backward prefetch) and its adapters.
        int inFlight = precision.BackwardPrefetch ? 2 : 1;
        long adapterPerLayer = s.IsAdapterMethod
            ? set.Tensors.Where(t => t.Unit.IsLayer).GroupBy(t => t.Unit).Select(g => g.Sum(t => t.Elements)).DefaultIfEmpty(0).Max()
            : 0;
        long gathered = root + inFlight * (layers.DefaultIfEmpty(0).Max() + FsdpPrecision.ComputeBytes * adapterPerLayer);

        // The reduce-scatter of the largest trained unit's gradient (bf16 in, its 1/N shard out).
        long largestUnit = s.IsAdapterMethod
            ? set.Tensors.Select(t => t.Elements).DefaultIfEmpty(0).Max()
            : set.Tensors.GroupBy(t => t.Unit).Select(g => g.Sum(t => t.Elements)).DefaultIfEmpty(0).Max();
        long comm = FsdpPrecision.ComputeBytes * (largestUnit + ShardElements(largestUnit, n));

        long dequant = s.IsQuantized ? WeightCost.DequantBuffer(inv, s) : 0;
        ActivationBytes act = ActivationCost.Estimate(inv, set, s, w, settings);

        bool offload = layout.OffloadParams;
        long resident = quantState + (offload ? 0 : shardedWeights + adapterShards + gradients + states);
        long backward = resident + gathered + comm + dequant + act.Peak;
        long step = resident + (offload ? 0 : stepTemp);
        bool backwardPeak = backward >= step;

        var device = new Dictionary<ShardedComponent, long>();
        foreach (ShardedComponent c in ShardedComponents.DeviceOrder) device[c] = 0;
        device[ShardedComponent.RuntimeOverhead] = budget.EffectiveOverhead;
        device[ShardedComponent.QuantState] = quantState;
        if (!offload)
        {
            device[ShardedComponent.ShardedWeights] = shardedWeights;
            device[ShardedComponent.AdapterShards] = adapterShards;
            device[ShardedComponent.Gradients] = gradients;
            device[ShardedComponent.OptimizerStates] = states;
        }
        if (backwardPeak)
        {
            bool logits = act.LogitsAtPeak;
            device[ShardedComponent.GatheredUnits] = gathered;
            device[ShardedComponent.CommBuffers] = comm;
            device[ShardedComponent.DequantBuffer] = dequant;
            device[ShardedComponent.Activations] = act.Saved + (logits ? 0 : act.Recompute);
            device[ShardedComponent.ActivationGradients] = logits ? 0 : act.Gradients;
            device[ShardedComponent.Logits] = logits ? act.Logits : 0;
        }
        else device[ShardedComponent.OptimizerStepTemp] = stepTemp;

        long allocated = device.Values.Sum() - budget.EffectiveOverhead;
        device[ShardedComponent.Fragmentation] = (long)Math.Round(allocated * budget.EffectiveFragmentation);
        long host = offload ? (long)n * (shardedWeights + adapterShards + gradients + states) : 0;
        return new ShardedEstimate { Layout = layout, Device = device, HostBytes = host, PeakPhase = backwardPeak ? "backward" : "optimizer-step" };
    }

    /// <summary>The root unit in bf16: token embedding, LM head (none when tied) and the final norm.</summary>
    public static long RootUnitBytes(ModelInventory inv) =>
        2 * (inv.EmbeddingElements + inv.LmHeadElements + inv.Spec.HiddenSize);

    /// <summary>
    /// One decoder layer's FSDP unit as stored: its projections (bf16, or the packed 4-bit bytes ⌈n/2⌉ without their
    /// quantization state), its two norms and its biases in bf16.
    /// </summary>
    public static long LayerUnitBytes(ModelInventory inv, Strategy s, int layer)
    {
        long bytes = 2 * inv.NormElementsPerLayer;
        foreach (LinearTensor t in inv.LinearsByLayer[layer])
            bytes += StoredBytes(t.Elements, s) + 2 * t.BiasElements;
        return bytes;
    }

    /// <summary>
    /// The quantization state of every 4-bit projection (what <see cref="WeightCost.LinearBytes"/> stores beyond the packed
    /// ⌈n/2⌉ bytes), held whole by every rank; 0 for a bf16 base.
    /// </summary>
    public static long QuantStateBytes(ModelInventory inv, Strategy s) =>
        !s.IsQuantized ? 0
        : inv.Linears.Sum(t => WeightCost.LinearBytes(t.Elements, s.Weights, s.DoubleQuant, s.LqLoraBits) - StoredBytes(t.Elements, s));

    /// <summary>One rank's share of a unit of <paramref name="bytes"/> stored as bf16 elements: padded to a multiple of N elements, then cut in N.</summary>
    public static long ShardBytes(long bytes, int gpus) => 2 * ShardElements(WeightCost.Ceil(bytes, 2), gpus);

    /// <summary>One rank's elements of a flat parameter of <paramref name="elements"/> after padding to a multiple of N.</summary>
    public static long ShardElements(long elements, int gpus) => WeightCost.Ceil(elements, gpus);

    private static long StoredBytes(long elements, Strategy s) => s.Weights switch
    {
        WeightFormat.Bf16 => 2 * elements,
        WeightFormat.Nf4 or WeightFormat.Fp4 => (elements + 1) / 2,
        _ => WeightCost.LinearBytes(elements, s.Weights, s.DoubleQuant, s.LqLoraBits),
    };
}
