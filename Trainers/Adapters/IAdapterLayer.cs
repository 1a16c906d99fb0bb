using static TorchSharp.torch;

namespace QuantPeft.Trainers.Adapters;

/// <summary>What every adapter layer offers beyond its forward: counting, merging, and its tensors for saving.</summary>
public interface IAdapterLayer
{
    /// <summary>The wrapped frozen projection.</summary>
    IBaseLinear BaseLayer { get; }

    /// <summary>Number of trainable scalars in this layer.</summary>
    long TrainableParameterCount { get; }

    /// <summary>Whether the adapter's update is currently folded into the base weight.</summary>
    bool Merged { get; }

    /// <summary>
    /// Whether forward adds the adapter's update (default true). Off, the layer computes its base alone: the model
    /// with every adapter off is the frozen model the adapters started from, DPO's reference without a second copy.
    /// </summary>
    /// <exception cref="AdapterException">Turning off a merged adapter (its update is inside the base weight).</exception>
    bool Enabled { get; set; }

    /// <summary>Folds the update into the base weight (dense bases only); forward then uses the base alone.</summary>
    void Merge();

    /// <summary>Removes a previously merged update from the base weight.</summary>
    void Unmerge();

    /// <summary>
    /// The adapter's own tensors by their name inside the layer (e.g. <c>lora_A.weight</c>), which is the
    /// suffix PEFT uses after the module path.
    /// </summary>
    IReadOnlyDictionary<string, Tensor> AdapterTensors();

    /// <summary>Copies saved tensors (same names as <see cref="AdapterTensors"/>) into the layer, checking shapes.</summary>
    void LoadAdapterTensors(IReadOnlyDictionary<string, Tensor> tensors);
}
