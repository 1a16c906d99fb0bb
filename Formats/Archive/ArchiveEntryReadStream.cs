using System.IO.Hashing;
using ZstdSharp;

namespace QuantPeft.Formats.Archive;

/// <summary>
/// The read side of one entry: decompresses its stored bytes and checks, on the read that delivers the
/// last byte, that the payload has the recorded length and XxHash64. Reading stops early without a check
/// only if the caller stops early.
/// </summary>
internal sealed class ArchiveEntryReadStream : Stream
{
    private readonly string _archive;
    private readonly ArchiveEntry _entry;
    private readonly DecompressionStream _zstd;
    private readonly XxHash64 _hash = new();
    private long _position;
    private bool _verified;

    public ArchiveEntryReadStream(string archive, ArchiveEntry entry, Stream stored)
    {
        _archive = archive;
        _entry = entry;
        _zstd = new DecompressionStream(stored, leaveOpen: false);
        if (entry.Length == 0)
        {
            try
            {
                VerifyEnd();
            }
            catch
            {
                _zstd.Dispose();
                throw;
            }
        }
    }

    public override int Read(Span<byte> buffer)
    {
        if (_verified || buffer.IsEmpty)
            return 0;
        long left = _entry.Length - _position;
        if (buffer.Length > left)
            buffer = buffer[..(int)left];
        int n = Decompress(buffer);
        if (n == 0)
            throw Corrupt($"the payload ends after {_position} bytes; the index records {_entry.Length}");
        _hash.Append(buffer[..n]);
        _position += n;
        if (_position == _entry.Length)
            VerifyEnd();
        return n;
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    private void VerifyEnd()
    {
        Span<byte> probe = stackalloc byte[1];
        if (Decompress(probe) != 0)
            throw Corrupt($"the payload is longer than the {_entry.Length} bytes the index records");
        ulong actual = _hash.GetCurrentHashAsUInt64();
        if (actual != _entry.Checksum)
            throw Corrupt($"payload checksum mismatch: XxHash64 {actual:x16}, recorded {_entry.Checksum:x16}");
        _verified = true;
    }

    private int Decompress(Span<byte> buffer)
    {
        try
        {
            return _zstd.Read(buffer);
        }
        catch (Exception e) when (e is ZstdException or EndOfStreamException or InvalidDataException)
        {
            throw Corrupt($"the stored payload does not decompress: {e.Message}", e);
        }
    }

    private ArchiveFormatException Corrupt(string problem, Exception? inner = null) => new(_archive, _entry.Name, problem, inner);

    protected override void Dispose(bool disposing)
    {
        if (disposing)
            _zstd.Dispose();
        base.Dispose(disposing);
    }

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => _entry.Length;
    public override long Position { get => _position; set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
