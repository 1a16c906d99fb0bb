using System.IO.Hashing;

namespace QuantPeft.Formats.Archive;

/// <summary>
/// Writes a zstd archive (docs/formats.md, "Archive format") entry by entry, streaming each payload
/// through the compressor into the file, so memory use does not grow with the archive.
/// </summary>
/// <remarks>
/// <para>The archive is built in a temporary file next to <see cref="Path"/> and renamed over it by
/// <see cref="Commit"/>; disposing without committing deletes the temporary file, so a failure
/// leaves neither a partial archive nor debris, and an archive already at the path stays as it was.</para>
/// <para>One entry is open at a time. Disposing an entry stream finishes that entry, so an exception
/// thrown while producing a payload must not be swallowed before committing: the entry would be
/// complete, with the bytes written so far. <see cref="WriteEntry(string, Stream)"/> guards against this
/// by refusing to commit after its copy failed.</para>
/// </remarks>
public sealed class ArchiveWriter : IDisposable
{
    /// <summary>zstd level used unless another is given: fast, and within a few percent of level 9 on weights.</summary>
    public const int DefaultCompressionLevel = 3;

    private readonly FileStream _file;
    private readonly string _tempPath;
    private readonly int _level;
    private readonly MemoryStream _index = new();
    private readonly HashSet<string> _names = new(StringComparer.Ordinal);
    private ArchiveEntryWriteStream? _open;
    private bool _failed, _committed, _disposed;

    private ArchiveWriter(string path, int level)
    {
        Path = System.IO.Path.GetFullPath(path);
        _level = level;
        string dir = System.IO.Path.GetDirectoryName(Path)!;
        Directory.CreateDirectory(dir);
        _tempPath = System.IO.Path.Combine(dir, $".{System.IO.Path.GetFileName(Path)}.{Guid.NewGuid():N}.tmp");
        _file = new FileStream(_tempPath, FileMode.CreateNew, FileAccess.Write, FileShare.None, bufferSize: 1 << 20);
        try
        {
            _file.Write(ArchiveLayout.EncodeFileHeader());
        }
        catch
        {
            _file.Dispose();
            File.Delete(_tempPath);
            throw;
        }
    }

    /// <summary>Starts a new archive that will replace <paramref name="path"/> when committed.</summary>
    /// <param name="path">Where the archive ends up.</param>
    /// <param name="compressionLevel">zstd level, 1 (fastest) to 22 (smallest).</param>
    public static ArchiveWriter Create(string path, int compressionLevel = DefaultCompressionLevel)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentOutOfRangeException.ThrowIfLessThan(compressionLevel, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(compressionLevel, 22);
        return new ArchiveWriter(path, compressionLevel);
    }

    /// <summary>The full path the archive is committed to.</summary>
    public string Path { get; }

    /// <summary>Number of finished entries.</summary>
    public int EntryCount => _names.Count;

    /// <summary>
    /// Opens entry <paramref name="name"/> for writing; dispose the returned stream to finish it
    /// before opening the next one.
    /// </summary>
    /// <exception cref="ArgumentException">The name is empty, has a NUL, exceeds 1024 UTF-8 bytes, or is already used.</exception>
    /// <exception cref="InvalidOperationException">Another entry is open, or the writer is committed, failed or disposed.</exception>
    public Stream OpenEntry(string name)
    {
        ThrowIfNotWritable();
        if (_open is not null)
            throw new InvalidOperationException($"archive '{Path}': entry '{_open.Name}' is still open; dispose its stream first");
        byte[] nameBytes = ArchiveLayout.EncodeName(name);
        if (_names.Contains(name))
            throw new ArgumentException($"archive '{Path}': entry '{name}' was already written", nameof(name));
        long offset = _file.Position;
        try
        {
            _file.Write(ArchiveLayout.EncodeEntryHeader(nameBytes, 0, 0, 0, 0)); // placeholder, patched when the entry ends
        }
        catch
        {
            _failed = true;
            throw;
        }
        _open = new ArchiveEntryWriteStream(this, _file, _level, name, nameBytes, offset);
        return _open;
    }

    /// <summary>Writes a whole entry from memory.</summary>
    public void WriteEntry(string name, ReadOnlySpan<byte> payload)
    {
        using var entry = OpenEntry(name);
        entry.Write(payload);
    }

    /// <summary>Writes a whole entry by copying <paramref name="source"/> to its end.</summary>
    /// <exception cref="InvalidOperationException">Also thrown by later calls if this copy failed.</exception>
    public void WriteEntry(string name, Stream source)
    {
        ArgumentNullException.ThrowIfNull(source);
        var entry = OpenEntry(name);
        try
        {
            source.CopyTo(entry, 1 << 20);
        }
        catch
        {
            // Finishing the entry would record a truncated payload as whole.
            _failed = true;
            _open?.Abandon();
            throw;
        }
        entry.Dispose();
    }

    /// <summary>
    /// Writes the table of contents and footer, flushes to disk, and renames the temporary file over
    /// <see cref="Path"/>. Nothing is visible at the path before this returns.
    /// </summary>
    public void Commit()
    {
        ThrowIfNotWritable();
        if (_open is not null)
            throw new InvalidOperationException($"archive '{Path}': entry '{_open.Name}' is still open; dispose its stream first");
        try
        {
            long indexOffset = _file.Position;
            byte[] index = _index.ToArray();
            _file.Write(index);
            _file.Write(ArchiveLayout.EncodeFooter(indexOffset, index.Length, _names.Count, XxHash64.HashToUInt64(index)));
            _file.Flush(flushToDisk: true);
            _file.Dispose();
            File.Move(_tempPath, Path, overwrite: true);
            _committed = true;
        }
        catch
        {
            _failed = true;
            throw;
        }
    }

    /// <summary>Releases the file; without a successful <see cref="Commit"/>, deletes the temporary file.</summary>
    public void Dispose()
    {
        if (_disposed)
            return;
        _disposed = true;
        _open?.Abandon();
        _file.Dispose();
        if (!_committed && File.Exists(_tempPath))
            File.Delete(_tempPath);
    }

    internal void MarkFailed() => _failed = true;

    internal void FinishEntry(ArchiveEntryWriteStream entry)
    {
        byte[] header = ArchiveLayout.EncodeEntryHeader(entry.NameBytes, entry.UncompressedLength, entry.StoredLength,
            entry.UncompressedChecksum, entry.StoredChecksum);
        long end = _file.Position;
        _file.Position = entry.HeaderOffset;
        _file.Write(header);
        _file.Position = end;
        ArchiveLayout.AppendIndexRecord(_index, entry.HeaderOffset, header);
        _names.Add(entry.Name);
        _open = null;
    }

    private void ThrowIfNotWritable()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_committed)
            throw new InvalidOperationException($"archive '{Path}' is already committed");
        if (_failed)
            throw new InvalidOperationException($"archive '{Path}': an earlier write failed; the archive cannot be completed");
    }
}
