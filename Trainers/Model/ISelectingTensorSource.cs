using TorchSharp;

namespace QuantPeft.Trainers.Model;

/// <summary>
/// A tensor source that can materialise only some rows or columns of a tensor, at less cost than the whole: a
/// synthetic source generates just those elements. Structured pruning (LoRAM) asks for the kept slices this way, so
/// a 70B-shaped synthetic model does not generate the 85 % of each pruned block that would be thrown away.
/// </summary>
public interface ISelectingTensorSource : ITensorSource
{
    /// <summary>
    /// The tensor <paramref name="name"/> restricted to <paramref name="indices"/> along <paramref name="dim"/>, equal
    /// to <c>Get(name).index_select(dim, indices)</c>; false when this source cannot do it more cheaply (the caller
    /// then cuts the full tensor itself).
    /// </summary>
    /// <param name="name">A name from <see cref="ITensorSource.Names"/>.</param>
    /// <param name="dim">0 (rows) or 1 (columns).</param>
    /// <param name="indices">Ascending indices to keep along <paramref name="dim"/>.</param>
    /// <param name="selected">The selected tensor, owned by the caller; null when the method returns false.</param>
    bool TrySelect(string name, int dim, long[] indices, out torch.Tensor? selected);
}
