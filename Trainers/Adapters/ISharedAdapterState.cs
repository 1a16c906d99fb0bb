using static TorchSharp.torch;

namespace QuantPeft.Trainers.Adapters;

/// <summary>
/// Frozen tensors every adapted projection of a model shares (VeRA's and RandLoRA's random bases), built once from a seed
/// after the base is loaded (<see cref="Methods.AdapterDescriptor.CreateShared"/>). They are saved with the adapter under
/// their PEFT keys and copied back in when a saved adapter is loaded, so a run never depends on regenerating them.
/// </summary>
public interface ISharedAdapterState : IDisposable
{
    /// <summary>The shared tensors by their key in PEFT's adapter file (e.g. <c>base_model.vera_A</c>); all frozen.</summary>
    IReadOnlyDictionary<string, Tensor> Tensors { get; }
}
