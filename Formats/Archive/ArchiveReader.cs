using System.Buffers.Binary;
using System.IO.Hashing;
using Microsoft.Win32.SafeHandles;

namespace QuantPeft.Formats.Archive;

/// <summary>
/// Reads an archive written by <see cref="ArchiveWriter"/>. Opening checks the header, the footer and
/// the table of contents; opening an entry checks its header against the table and its stored bytes
/// against their checksum before any of them reach the decompressor; reading an entry to its end checks
/// the payload's length and checksum. Every failure is an <see cref="ArchiveFormatException"/>.
/// </summary>
/// <remarks>Entry streams read the file by offset, so several may be open at once; they need the reader undisposed.</remarks>
public sealed class ArchiveReader : IDisposable
{
    private readonly SafeFileHandle _handle;
    private readonly Dictionary<string, ArchiveEntry> _byName;

    private ArchiveReader(string path, SafeFileHandle handle, List<ArchiveEntry> entries)
    {
        Path = path;
        _handle = handle;
        Entries = entries.AsReadOnly();
        _byName = entries.ToDictionary(e => e.Name, StringComparer.Ordinal);
    }

    /// <summary>The archive file.</summary>
    public string Path { get; }

    /// <summary>The entries in the order they were written.</summary>
    public IReadOnlyList<ArchiveEntry> Entries { get; }

    /// <summary>Opens <paramref name="path"/> and reads its table of contents.</summary>
    /// <exception cref="ArchiveFormatException">Missing, unreadable, not an archive, unknown version, truncated or corrupt.</exception>
    public static ArchiveReader Open(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!File.Exists(path))
            throw new ArchiveFormatException(path, null, "file not found");
        SafeFileHandle handle;
        try
        {
            handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ArchiveFormatException(path, null, $"cannot be opened: {e.Message}", e);
        }
        try
        {
            return new ArchiveReader(path, handle, ArchiveIndexReader.ReadEntries(path, handle));
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    /// <summary>Whether the archive has an entry called <paramref name="name"/>.</summary>
    public bool Contains(string name) => _byName.ContainsKey(name);

    /// <summary>The table-of-contents record of entry <paramref name="name"/>.</summary>
    /// <exception cref="ArchiveFormatException">There is no such entry.</exception>
    public ArchiveEntry GetEntry(string name) =>
        _byName.TryGetValue(name, out var entry)
            ? entry
            : throw new ArchiveFormatException(Path, name, $"not in the archive (it has {Entries.Count} entries)");

    /// <summary>
    /// Opens entry <paramref name="name"/> for reading as a forward-only stream of its uncompressed payload.
    /// Its stored bytes are read once up front to check their checksum, so corruption is reported here
    /// rather than as garbage output; the payload checksum is checked by the read that reaches the end.
    /// </summary>
    /// <exception cref="ArchiveFormatException">No such entry, or its header or stored bytes are corrupt.</exception>
    public Stream OpenEntry(string name)
    {
        ObjectDisposedException.ThrowIf(_handle.IsClosed, this);
        var entry = GetEntry(name);
        long storedStart = CheckEntryHeader(entry);
        CheckStoredBytes(entry, storedStart);
        return new ArchiveEntryReadStream(Path, entry, new FileSliceStream(_handle, storedStart, entry.StoredLength));
    }

    /// <summary>Reads a whole entry into memory, verified.</summary>
    /// <exception cref="ArchiveFormatException">No such entry, or it is corrupt.</exception>
    public byte[] ReadAllBytes(string name)
    {
        var entry = GetEntry(name);
        if (entry.Length > Array.MaxLength)
            throw new InvalidOperationException($"archive '{Path}': entry '{name}' has {entry.Length} bytes, too many for one array; use OpenEntry");
        var bytes = new byte[entry.Length];
        using var stream = OpenEntry(name);
        stream.ReadExactly(bytes);
        return bytes;
    }

    /// <summary>Closes the file.</summary>
    public void Dispose() => _handle.Dispose();

    /// <summary>Checks the entry header in the file against the table of contents; returns where its stored bytes start.</summary>
    private long CheckEntryHeader(ArchiveEntry entry)
    {
        byte[] name = ArchiveLayout.StrictUtf8.GetBytes(entry.Name);
        byte[] expected = ArchiveLayout.EncodeEntryHeader(name, entry.Length, entry.StoredLength, entry.Checksum, entry.StoredChecksum);
        var actual = new byte[expected.Length];
        ReadAt(actual, entry.Offset, entry.Name);
        if (!actual.AsSpan().SequenceEqual(expected))
        {
            int hashAt = actual.Length - 8;
            bool selfConsistent = BinaryPrimitives.ReadUInt64LittleEndian(actual.AsSpan(hashAt)) == XxHash64.HashToUInt64(actual.AsSpan(0, hashAt));
            throw new ArchiveFormatException(Path, entry.Name, selfConsistent
                ? $"the entry header at offset {entry.Offset} disagrees with the table of contents"
                : $"the entry header at offset {entry.Offset} fails its checksum");
        }
        return entry.Offset + expected.Length;
    }

    private void CheckStoredBytes(ArchiveEntry entry, long start)
    {
        var hash = new XxHash64();
        var buffer = new byte[(int)Math.Min(entry.StoredLength, 1 << 20)];
        for (long done = 0; done < entry.StoredLength;)
        {
            int n = (int)Math.Min(buffer.Length, entry.StoredLength - done);
            ReadAt(buffer.AsSpan(0, n), start + done, entry.Name);
            hash.Append(buffer.AsSpan(0, n));
            done += n;
        }
        ulong actual = hash.GetCurrentHashAsUInt64();
        if (actual != entry.StoredChecksum)
            throw new ArchiveFormatException(Path, entry.Name,
                $"stored payload checksum mismatch: XxHash64 {actual:x16}, recorded {entry.StoredChecksum:x16}");
    }

    private void ReadAt(Span<byte> buffer, long offset, string entry)
    {
        try
        {
            while (!buffer.IsEmpty)
            {
                int n = RandomAccess.Read(_handle, buffer, offset);
                if (n == 0)
                    throw new ArchiveFormatException(Path, entry, $"the file ends at offset {offset}, inside the entry (truncated?)");
                buffer = buffer[n..];
                offset += n;
            }
        }
        catch (IOException e)
        {
            throw new ArchiveFormatException(Path, entry, $"cannot be read: {e.Message}", e);
        }
    }
}
