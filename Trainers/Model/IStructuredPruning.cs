using QuantPeft.Formats.HuggingFace;

namespace QuantPeft.Trainers.Model;

/// <summary>
/// Narrows some decoder blocks while the checkpoint streams in (LoRAM): the model builds each block with
/// <see cref="Dims"/>, and <see cref="CausalLm.LoadWeights"/> reads the checkpoint through <see cref="Apply"/>, which
/// hands out each tensor already cut to those widths, so the unpruned weights are never all resident.
/// </summary>
public interface IStructuredPruning
{
    /// <summary>The widths of block <paramref name="layer"/> after pruning.</summary>
    LayerDims Dims(int layer);

    /// <summary>A view of <paramref name="source"/> whose tensors have the pruned shapes; same names, same origin.</summary>
    ITensorSource Apply(ITensorSource source);
}
