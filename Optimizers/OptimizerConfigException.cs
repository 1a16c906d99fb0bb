using QuantPeft.Formats;

namespace QuantPeft.Optimizers;

/// <summary>
/// A user-supplied optimizer setting is invalid (unknown optimizer name, negative learning rate, betas
/// outside [0, 1), GaLore rank larger than the matrix, ...). The message names the setting, the value
/// found and what was expected.
/// </summary>
public sealed class OptimizerConfigException : QuantPeftException
{
    /// <summary>Creates the exception with a message that names the setting at fault.</summary>
    public OptimizerConfigException(string message) : base(message) { }
}
