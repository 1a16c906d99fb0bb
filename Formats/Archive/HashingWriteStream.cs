using System.IO.Hashing;

namespace QuantPeft.Formats.Archive;

/// <summary>
/// Passes compressed bytes through to the archive file while hashing and counting them, so the stored
/// checksum and length are known the moment the compressor finishes, without reading anything back.
/// </summary>
internal sealed class HashingWriteStream(Stream inner) : Stream
{
    private readonly XxHash64 _hash = new();

    public long BytesWritten { get; private set; }

    public ulong Checksum => _hash.GetCurrentHashAsUInt64();

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        _hash.Append(buffer);
        inner.Write(buffer);
        BytesWritten += buffer.Length;
    }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void WriteByte(byte value) => Write([value]);

    // The archive file is flushed once, at commit; the compressor's flushes must not reach it.
    public override void Flush() { }

    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => BytesWritten; set => throw new NotSupportedException(); }
    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
}
