namespace QuantPeft.Formats.Archive;

/// <summary>
/// An archive that cannot be read as written: missing, not an archive, of an unknown format version,
/// truncated, or failing a checksum; or an entry that is not in it. The message names the archive
/// path and, where one is at fault, the entry.
/// </summary>
public sealed class ArchiveFormatException : QuantPeftException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="archivePath">The archive file at fault.</param>
    /// <param name="entryName">The entry at fault, or null when the archive as a whole is.</param>
    /// <param name="problem">What is wrong: what was expected and what was found.</param>
    /// <param name="inner">The error that revealed the problem, if any.</param>
    public ArchiveFormatException(string archivePath, string? entryName, string problem, Exception? inner = null)
        : base(entryName is null ? $"archive '{archivePath}': {problem}" : $"archive '{archivePath}': entry '{entryName}': {problem}", inner!)
    {
        ArchivePath = archivePath;
        EntryName = entryName;
    }

    /// <summary>The archive file at fault.</summary>
    public string ArchivePath { get; }

    /// <summary>The entry at fault, or null when the archive as a whole is.</summary>
    public string? EntryName { get; }
}
