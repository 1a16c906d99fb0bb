using QuantPeft.Formats.HuggingFace;
using QuantPeft.Memory.CostModel;
using QuantPeft.Trainers.Model;

namespace QuantPeft.Trainers.Pruning;

/// <summary>
/// LoRAM structured pruning at load time. Which blocks: as the LoRAM scripts (and LLM-Pruner's defaults they use) do,
/// the first <see cref="LoramPruning.KeptHeadLayers"/> and last <see cref="LoramPruning.KeptTailLayers"/> blocks stay
/// whole; a model too shallow to have any block between them (the 4-block demo) has every block pruned instead, or
/// LoRAM would do nothing there. How much: each pruned block drops ⌊p·n_kv⌋ whole key/value heads, each with the
/// query heads of its group (so grouped-query attention stays grouped: the group size never changes), and keeps
/// ⌊(1−p)·I⌋ MLP channels; the hidden size is never pruned. This is the rounding the planner's cost model uses.
/// Which units: <see cref="PruningCriterion"/>, decided per block from that block's tensors only, when the
/// checkpoint first asks for one of them.
/// </summary>
public sealed class LoramPruner : IStructuredPruning
{
    private readonly ModelSpec _spec;
    private readonly int _keptKvHeads, _keptChannels;
    private readonly int[]?[] _kvHeads, _channels;
    private PruningPlan? _plan;

    /// <summary>Checks the request and fixes the pruned widths; the kept indices are chosen while loading.</summary>
    /// <exception cref="PruningException">The ratio is outside (0, 1) or leaves a pruned block no key/value head or no MLP channel.</exception>
    public LoramPruner(ModelSpec spec, double ratio, PruningCriterion criterion, long seed)
    {
        if (!(ratio > 0 && ratio < 1))
            throw new PruningException($"--prune: expected a ratio in (0, 1), found {ratio}");
        _spec = spec;
        Ratio = ratio;
        Criterion = criterion;
        Seed = seed;
        // The epsilon keeps 0.65·40 = 26.000000000000004 from removing a 27th head (as the cost model does).
        _keptKvHeads = spec.NumKvHeads - (int)Math.Floor(ratio * spec.NumKvHeads + 1e-9);
        _keptChannels = (int)Math.Floor((1 - ratio) * spec.IntermediateSize + 1e-9);
        if (_keptKvHeads < 1)
            throw new PruningException($"--prune: {ratio} removes all {spec.NumKvHeads} key/value heads of a pruned block; expected a ratio that leaves at least one");
        if (_keptChannels < 1)
            throw new PruningException($"--prune: {ratio} leaves none of the {spec.IntermediateSize} MLP channels of a pruned block; expected a ratio below {1 - 1.0 / spec.IntermediateSize}");
        _kvHeads = new int[]?[spec.NumLayers];
        _channels = new int[]?[spec.NumLayers];
    }

    /// <summary>The pruning ratio p.</summary>
    public double Ratio { get; }

    /// <summary>How kept units are chosen.</summary>
    public PruningCriterion Criterion { get; }

    /// <summary>Seed of the random criterion.</summary>
    public long Seed { get; }

    /// <summary>Whether block <paramref name="layer"/> of a <paramref name="numLayers"/>-block model is pruned.</summary>
    public static bool IsPrunedLayer(int layer, int numLayers) =>
        LoramPruning.IsPruned(layer, numLayers);

    /// <inheritdoc />
    public LayerDims Dims(int layer) => IsPrunedLayer(layer, _spec.NumLayers)
        ? new LayerDims(_keptKvHeads * _spec.GroupSize, _keptKvHeads, _keptChannels)
        : LayerDims.Of(_spec);

    /// <inheritdoc />
    public ITensorSource Apply(ITensorSource source) => new PrunedTensorSource(this, _spec, source);

    /// <summary>Whether every pruned block has its kept units chosen (true after a load).</summary>
    public bool IsComplete => Enumerable.Range(0, _spec.NumLayers)
        .All(l => !IsPrunedLayer(l, _spec.NumLayers) || (_kvHeads[l] is not null && _channels[l] is not null));

    /// <summary>The kept indices of every block.</summary>
    /// <exception cref="InvalidOperationException">The weights have not been loaded through <see cref="Apply"/> yet.</exception>
    public PruningPlan Plan
    {
        get
        {
            if (_plan is not null) return _plan;
            if (!IsComplete) throw new InvalidOperationException("the pruning plan is chosen while the weights load; load the model first");
            var layers = Enumerable.Range(0, _spec.NumLayers).Select(l => IsPrunedLayer(l, _spec.NumLayers)
                ? new LayerPruning(l, true, _kvHeads[l]!, _channels[l]!)
                : new LayerPruning(l, false, Enumerable.Range(0, _spec.NumKvHeads).ToArray(), Enumerable.Range(0, _spec.IntermediateSize).ToArray()))
                .ToList();
            return _plan = new PruningPlan(_spec, Ratio, Criterion, Seed, layers);
        }
    }

    /// <summary>The kept key/value heads of pruned block <paramref name="layer"/>, choosing them from <paramref name="source"/> on first use.</summary>
    internal int[] KeptKvHeads(int layer, ITensorSource source) => _kvHeads[layer] ??= Criterion == PruningCriterion.Random
        ? RandomKeep(_spec.NumKvHeads, _keptKvHeads, Mix(Seed, layer, 0))
        : TopKeep(ChannelImportance.KvHeads(_spec, layer, source), _keptKvHeads);

    /// <summary>The kept MLP channels of pruned block <paramref name="layer"/>, choosing them from <paramref name="source"/> on first use.</summary>
    internal int[] KeptChannels(int layer, ITensorSource source) => _channels[layer] ??= Criterion == PruningCriterion.Random
        ? RandomKeep(_spec.IntermediateSize, _keptChannels, Mix(Seed, layer, 1))
        : TopKeep(ChannelImportance.Channels(_spec, layer, source), _keptChannels);

    /// <summary>The <paramref name="keep"/> highest scores' indices, ascending; ties go to the lower index.</summary>
    internal static int[] TopKeep(double[] scores, int keep) =>
        Enumerable.Range(0, scores.Length).OrderByDescending(i => scores[i]).ThenBy(i => i).Take(keep).Order().ToArray();

    /// <summary>A uniform <paramref name="keep"/>-subset of 0..n−1 (partial Fisher–Yates), ascending.</summary>
    private static int[] RandomKeep(int n, int keep, int seed)
    {
        var rng = new Random(seed);
        var order = Enumerable.Range(0, n).ToArray();
        for (int i = 0; i < keep; i++)
        {
            int j = rng.Next(i, n);
            (order[i], order[j]) = (order[j], order[i]);
        }
        return order.Take(keep).Order().ToArray();
    }

    // SplitMix64 of (seed, layer, part): independent streams per block and per attention/MLP, stable across runs and platforms.
    private static int Mix(long seed, int layer, int part)
    {
        ulong z = unchecked((ulong)seed + 0x9E3779B97F4A7C15UL * (ulong)(2 * layer + part + 1));
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return (int)((z ^ (z >> 31)) & int.MaxValue);
    }
}
