using System.IO.Hashing;
using ZstdSharp;

namespace QuantPeft.Formats.Archive;

/// <summary>
/// The write side of one entry: bytes written here are hashed, counted and compressed straight into the
/// archive file. Disposing it finishes the entry (its header is patched with lengths and checksums).
/// </summary>
internal sealed class ArchiveEntryWriteStream : Stream
{
    private readonly ArchiveWriter _owner;
    private readonly HashingWriteStream _stored;
    private readonly CompressionStream _zstd;
    private readonly XxHash64 _hash = new();
    private bool _finished;

    public ArchiveEntryWriteStream(ArchiveWriter owner, Stream file, int compressionLevel, string name, byte[] nameBytes, long headerOffset)
    {
        _owner = owner;
        Name = name;
        NameBytes = nameBytes;
        HeaderOffset = headerOffset;
        _stored = new HashingWriteStream(file);
        _zstd = new CompressionStream(_stored, compressionLevel, leaveOpen: true);
    }

    public string Name { get; }
    public byte[] NameBytes { get; }
    public long HeaderOffset { get; }
    public long UncompressedLength { get; private set; }
    public ulong UncompressedChecksum => _hash.GetCurrentHashAsUInt64();
    public long StoredLength => _stored.BytesWritten;
    public ulong StoredChecksum => _stored.Checksum;

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        ObjectDisposedException.ThrowIf(_finished, this);
        try
        {
            _hash.Append(buffer);
            UncompressedLength += buffer.Length;
            _zstd.Write(buffer);
        }
        catch
        {
            _owner.MarkFailed();
            throw;
        }
    }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void WriteByte(byte value) => Write([value]);

    public override void Flush() { }

    /// <summary>Releases the compressor without finishing the entry; used when the archive is being discarded.</summary>
    public void Abandon()
    {
        if (_finished)
            return;
        _finished = true;
        try
        {
            _zstd.Dispose(); // frees the compressor; whatever it flushes lands in a temporary file about to be deleted
        }
        catch (IOException)
        {
        }
        catch (ObjectDisposedException)
        {
        }
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing && !_finished)
        {
            _finished = true;
            try
            {
                _zstd.Dispose(); // ends the zstd frame
                _owner.FinishEntry(this);
            }
            catch
            {
                _owner.MarkFailed();
                throw;
            }
        }
        base.Dispose(disposing);
    }

    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => !_finished;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => UncompressedLength; set => throw new NotSupportedException(); }
    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
}
