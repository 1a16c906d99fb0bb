namespace QuantPeft.Formats;

/// <summary>
/// Base of every error caused by the user's input (a file, a flag, a budget) rather than by a bug.
/// The command line reports these as one line naming what is wrong and where, with exit code 1;
/// anything else is an internal error (exit code 2).
/// </summary>
public class QuantPeftException : Exception
{
    /// <summary>Creates the exception with a message that names the artifact at fault.</summary>
    public QuantPeftException(string message) : base(message) { }

    /// <summary>Creates the exception with a message and the error that caused it.</summary>
    public QuantPeftException(string message, Exception inner) : base(message, inner) { }
}
