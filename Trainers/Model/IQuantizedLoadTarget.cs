namespace QuantPeft.Trainers.Model;

/// <summary>
/// Implemented by a module that keeps a pre-quantized checkpoint weight as it is stored: a 4-bit base takes the
/// bitsandbytes codes and scales, an LQ-LoRA base its Q, and the LQ-LoRA load hook the factors L1, L2.
/// The loader has already checked the weight's dense shape against the model.
/// </summary>
public interface IQuantizedLoadTarget
{
    /// <summary>Receives the weight named <c>&lt;module name&gt;.&lt;localName&gt;</c>.</summary>
    /// <param name="localName">The last name segment (<c>weight</c>).</param>
    /// <param name="weight">The stored weight; owned by the loader, which disposes it afterwards (take what is kept).</param>
    void LoadQuantized(string localName, QuantizedWeight weight);
}
