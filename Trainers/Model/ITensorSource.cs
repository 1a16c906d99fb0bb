using TorchSharp;

namespace QuantPeft.Trainers.Model;

/// <summary>
/// Anything that can hand out checkpoint tensors by their Hugging Face name: a safetensors file or
/// a set of shards, an in-memory dictionary in tests, a converter. The loader asks for one tensor at a
/// time, copies it into the model and disposes it, so a source never has to hold the whole model.
/// </summary>
public interface ITensorSource
{
    /// <summary>Where the tensors come from (a file or folder path); used in error messages.</summary>
    string Origin { get; }

    /// <summary>Every tensor name the source holds, in any order.</summary>
    IEnumerable<string> Names { get; }

    /// <summary>
    /// Materialises one tensor. The caller owns the result and disposes it once it has been copied;
    /// its dtype and device may differ from the model's (the loader converts).
    /// </summary>
    /// <param name="name">A name from <see cref="Names"/>.</param>
    torch.Tensor Get(string name);
}
