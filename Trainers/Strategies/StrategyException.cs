using QuantPeft.Formats;

namespace QuantPeft.Trainers.Strategies;

/// <summary>A training strategy (full-parameter, GaLore, LISA) asked for something the model or the other options rule out.</summary>
public sealed class StrategyException : QuantPeftException
{
    /// <summary>Creates the exception; the message names the flag or module and what was expected.</summary>
    public StrategyException(string message) : base(message) { }
}
