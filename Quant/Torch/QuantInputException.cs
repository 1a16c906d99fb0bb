using QuantPeft.Formats;

namespace QuantPeft.Quant.Torch;

/// <summary>
/// Bad input to the TorchSharp quantizers, quantized layers or LQ-LoRA: a tensor of the wrong dtype or
/// shape, a block size outside the allowed set, a bit budget that no configuration can meet. The message
/// names the tensor, option or budget and says what was expected and what was found.
/// </summary>
public sealed class QuantInputException : QuantPeftException
{
    /// <summary>Creates the exception with a message that names the input at fault.</summary>
    public QuantInputException(string message) : base(message) { }
}
