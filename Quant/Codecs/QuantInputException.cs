using QuantPeft.Formats;

namespace QuantPeft.Quant.Codecs;

/// <summary>
/// A quantizer or dequantizer was handed input it cannot represent: a block size outside the
/// whitelist, a non-finite weight, buffers of the wrong length, or a serialized state that is
/// inconsistent. The message names the argument or tensor at fault, what was expected and what was found.
/// </summary>
public sealed class QuantInputException : QuantPeftException
{
    /// <summary>Creates the exception; <paramref name="message"/> names the argument or tensor at fault.</summary>
    public QuantInputException(string message) : base(message) { }
}
