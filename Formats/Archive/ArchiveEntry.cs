namespace QuantPeft.Formats.Archive;

/// <summary>One entry of an archive, as its table of contents records it.</summary>
/// <param name="Name">The entry name (UTF-8 on disk, unique within the archive).</param>
/// <param name="Length">Uncompressed payload length in bytes.</param>
/// <param name="StoredLength">Length of the compressed (stored) payload in bytes.</param>
/// <param name="Checksum">XxHash64 (seed 0) of the uncompressed payload.</param>
public sealed record ArchiveEntry(string Name, long Length, long StoredLength, ulong Checksum)
{
    /// <summary>Offset of the entry header from the start of the file.</summary>
    internal long Offset { get; init; }

    /// <summary>XxHash64 of the stored bytes, checked before they reach the decompressor.</summary>
    internal ulong StoredChecksum { get; init; }
}
