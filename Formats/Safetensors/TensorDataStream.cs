namespace QuantPeft.Formats.Safetensors;

/// <summary>
/// The write-only stream a tensor callback receives: forwards to the file and refuses to write past
/// the tensor's byte length, so a buggy callback cannot overwrite the next tensor.
/// </summary>
internal sealed class TensorDataStream(Stream file, string tensorName, long capacity) : Stream
{
    public long Written { get; private set; }

    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => Written;

    public override long Position
    {
        get => Written;
        set => throw new NotSupportedException("tensor data is written sequentially");
    }

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        if (buffer.Length > capacity - Written)
            throw new InvalidOperationException($"tensor '{tensorName}': the callback wrote more than the tensor's {capacity} bytes");
        file.Write(buffer);
        Written += buffer.Length;
    }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void WriteByte(byte value) => Write([value]);

    public override void Flush() { }

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException("write-only stream");

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException("tensor data is written sequentially");

    public override void SetLength(long value) => throw new NotSupportedException("the tensor's length is fixed by its header");
}
