namespace QuantPeft.Trainers.Model;

/// <summary>
/// A tensor source whose checkpoint stores the projection weights already quantized (a bitsandbytes 4-bit or an
/// LQ-LoRA model folder). The loader hands such a weight in its stored form to a module that implements
/// <see cref="IQuantizedLoadTarget"/>; any other module asks <see cref="ITensorSource.Get"/>, which returns the dense
/// value the stored form stands for, so every consumer of a source still works (only slower).
/// </summary>
public interface IQuantizedTensorSource : ITensorSource
{
    /// <summary>Whether the tensor <paramref name="name"/> (from <see cref="ITensorSource.Names"/>) is stored quantized.</summary>
    bool IsQuantized(string name);

    /// <summary>Reads one quantized weight in its stored form; the caller owns and disposes the result.</summary>
    /// <exception cref="ModelException">The weight's tensors are missing or inconsistent; the message names the tensor and the file.</exception>
    QuantizedWeight GetQuantized(string name);
}
