using QuantPeft.Formats;

namespace QuantPeft.Trainers.Adapters;

/// <summary>An adapter configuration or operation that cannot work for the layer it names.</summary>
public sealed class AdapterException : QuantPeftException
{
    /// <summary>Creates the exception; the message names the layer and what was expected.</summary>
    public AdapterException(string message) : base(message) { }
}
