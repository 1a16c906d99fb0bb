using QuantPeft.Formats;

namespace QuantPeft.Trainers.Export;

/// <summary>An adapter or model handed to an export does not fit; the message names the file, tensor or flag.</summary>
public sealed class ExportException : QuantPeftException
{
    /// <summary>Creates the exception.</summary>
    public ExportException(string message) : base(message)
    {
    }
}
