using QuantPeft.Formats;

namespace QuantPeft.Trainers.Model;

/// <summary>
/// A checkpoint or an input that does not fit the model: a missing, unexpected or mis-shaped tensor,
/// an unsupported architecture option, or a sequence longer than the model supports. The message
/// names the tensor, field or input and gives the expected and found values.
/// </summary>
public sealed class ModelException : QuantPeftException
{
    /// <summary>Creates the exception with a message that names the artifact at fault.</summary>
    public ModelException(string message) : base(message) { }
}
