using Microsoft.Win32.SafeHandles;

namespace QuantPeft.Formats.Archive;

/// <summary>
/// A read-only window [start, start + length) of a file, read with positional I/O so that several
/// entries of one archive can be read at once without sharing a file position.
/// </summary>
internal sealed class FileSliceStream(SafeFileHandle handle, long start, long length) : Stream
{
    private long _position;

    public override int Read(Span<byte> buffer)
    {
        long left = length - _position;
        if (left <= 0 || buffer.IsEmpty)
            return 0;
        if (buffer.Length > left)
            buffer = buffer[..(int)left];
        int n = RandomAccess.Read(handle, buffer, start + _position);
        if (n == 0)
            throw new EndOfStreamException($"the file ends inside a stored payload at offset {start + _position}");
        _position += n;
        return n;
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => length;
    public override long Position { get => _position; set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
