using QuantPeft.Formats;

namespace QuantPeft.Trainers.Pruning;

/// <summary>A LoRAM pruning request that cannot be met: a ratio outside (0, 1), one that leaves a block no head or channel, an unknown criterion.</summary>
public sealed class PruningException : QuantPeftException
{
    /// <summary>Creates the exception with a message that names the flag, what was expected and what was found.</summary>
    public PruningException(string message) : base(message) { }
}
