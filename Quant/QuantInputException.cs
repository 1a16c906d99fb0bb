using QuantPeft.Formats;

namespace QuantPeft.Quant;

/// <summary>
/// A quantizer, quantized layer or LQ-LoRA step was handed input it cannot represent: a block size outside
/// the whitelist, a non-finite weight, a tensor of the wrong dtype or shape, buffers of the wrong length, an
/// inconsistent serialized state, or a bit budget no configuration meets. One type for the whole Quant
/// project (host codecs, TorchSharp side, checkpoints); the message names the argument, tensor or budget at
/// fault, what was expected and what was found.
/// </summary>
public sealed class QuantInputException : QuantPeftException
{
    /// <summary>Creates the exception; <paramref name="message"/> names the argument or tensor at fault.</summary>
    public QuantInputException(string message) : base(message) { }
}
