using QuantPeft.Formats.HuggingFace;

namespace QuantPeft.Memory.CostModel;

/// <summary>
/// LoRAM structured pruning as its released scripts apply it: the first <see cref="KeptHeadLayers"/> and the
/// last <see cref="KeptTailLayers"/> decoder layers stay whole; every layer between them loses a fraction
/// <c>p</c> of its MLP channels (rows of gate/up, columns of down) and of its KV heads (rows of k/v, with the
/// query heads of each removed group: rows of q, columns of o). The hidden size is never pruned.
/// </summary>
/// <remarks>
/// Rounding reproduces the published storage figures exactly (the LoRAM paper's storage table): heads are removed in whole
/// units, ⌊p·n_kv⌋ of them, so ⌈(1−p)·n_kv⌉ stay (LLaMA-2-70B at 0.85 keeps 2 of 8); MLP channels keep
/// ⌊(1−p)·I⌋ (LLaMA-2-13B at 0.65 keeps 4,838 of 13,824, giving exactly 6,005,662,720 parameters).
/// </remarks>
public static class LoramPruning
{
    /// <summary>Leading layers left unpruned.</summary>
    public const int KeptHeadLayers = 4;
    /// <summary>Trailing layers left unpruned.</summary>
    public const int KeptTailLayers = 2;

    /// <summary>
    /// Whether layer <paramref name="layer"/> of a <paramref name="numLayers"/>-layer model is pruned. A model with no
    /// more layers than the kept head and tail (a demo-sized one) has every layer pruned, or LoRAM would do nothing;
    /// the trainer's pruner asks this same rule, so plan and run agree.
    /// </summary>
    public static bool IsPruned(int layer, int numLayers) =>
        numLayers <= KeptHeadLayers + KeptTailLayers || (layer >= KeptHeadLayers && layer < numLayers - KeptTailLayers);

    /// <summary>The widths layer <paramref name="layer"/> keeps after pruning by <paramref name="ratio"/>.</summary>
    public static LayerDims Dims(ModelSpec spec, int layer, double ratio)
    {
        int kvHeads = spec.NumKvHeads, inter = spec.IntermediateSize;
        if (ratio > 0 && IsPruned(layer, spec.NumLayers))
        {
            // A tiny epsilon keeps 0.65·40 = 26.000000000000004 from removing a 27th head.
            kvHeads = Math.Max(1, spec.NumKvHeads - (int)Math.Floor(ratio * spec.NumKvHeads + 1e-9));
            inter = Math.Max(1, (int)Math.Floor((1 - ratio) * spec.IntermediateSize + 1e-9));
        }
        return new LayerDims(kvHeads * spec.GroupSize, kvHeads, inter);
    }

    /// <summary>The dimensions of layer <paramref name="layer"/> after pruning by <paramref name="ratio"/>.</summary>
    public static LayerShape Shape(ModelSpec spec, int layer, double ratio) => ShapeOf(spec, Dims(spec, layer, ratio));

    /// <summary>The activation formulas' view of a block of widths <paramref name="dims"/>.</summary>
    public static LayerShape ShapeOf(ModelSpec spec, LayerDims dims) =>
        new((long)dims.NumHeads * spec.HeadDim, (long)dims.NumKvHeads * spec.HeadDim, dims.NumHeads, dims.IntermediateSize);
}
