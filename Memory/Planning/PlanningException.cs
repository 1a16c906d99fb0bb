using QuantPeft.Formats;

namespace QuantPeft.Memory.Planning;

/// <summary>A planner input that is malformed or contradictory; the message names the flag(s).</summary>
public sealed class PlanningException : QuantPeftException
{
    /// <summary>Creates the exception.</summary>
    public PlanningException(string message) : base(message) { }
}
