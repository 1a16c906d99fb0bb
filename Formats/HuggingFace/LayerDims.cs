namespace QuantPeft.Formats.HuggingFace;

/// <summary>
/// The widths of one decoder block that structured pruning can change: query heads, key/value heads and MLP
/// channels. The hidden size and the head dimension are shared by every block and stay in the <see cref="ModelSpec"/>,
/// whose <see cref="ModelSpec.Tensors(Func{int, LayerDims})"/> turns these widths into tensor shapes.
/// </summary>
/// <param name="NumHeads">Query heads of the block.</param>
/// <param name="NumKvHeads">Key/value heads of the block; divides <paramref name="NumHeads"/>.</param>
/// <param name="IntermediateSize">MLP channels (rows of gate/up, columns of down).</param>
public sealed record LayerDims(int NumHeads, int NumKvHeads, int IntermediateSize)
{
    /// <summary>The widths every block of an unpruned <paramref name="spec"/> has.</summary>
    public static LayerDims Of(ModelSpec spec) => new(spec.NumHeads, spec.NumKvHeads, spec.IntermediateSize);
}
