using TorchSharp;

namespace QuantPeft.Trainers.Model;

/// <summary>
/// Implemented by a module that wants to receive its checkpoint tensors itself instead of having
/// them copied into a parameter of the same name: a 4-bit linear quantizes the weight on the way in,
/// an adapter wrapper forwards <c>weight</c> to its base layer. The loader has already checked the
/// tensor's shape against <see cref="QuantPeft.Formats.HuggingFace.ModelSpec.Tensors()"/>.
/// </summary>
public interface ITensorLoadTarget
{
    /// <summary>Receives the tensor named <c>&lt;module name&gt;.&lt;localName&gt;</c> in the checkpoint.</summary>
    /// <param name="localName">The last name segment, e.g. <c>weight</c> or <c>bias</c>.</param>
    /// <param name="value">The checkpoint tensor; owned by the loader, which disposes it afterwards.</param>
    void LoadTensor(string localName, torch.Tensor value);
}
