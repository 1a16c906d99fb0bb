namespace QuantPeft.Formats.Safetensors;

/// <summary>
/// Where a tensor's bytes come from when a file is written: a buffer, a callback that streams them,
/// or nothing at all (zeros, left as a hole in a sparse file).
/// </summary>
public abstract class SafetensorsTensorSource
{
    private protected SafetensorsTensorSource() { }

    /// <summary>Writes the tensor through <paramref name="writer"/>.</summary>
    internal abstract void WriteTo(SafetensorsWriter writer, string name);

    /// <summary>Bytes already in memory (exactly the tensor's byte length).</summary>
    public static SafetensorsTensorSource FromBytes(ReadOnlyMemory<byte> data) => new Bytes(data);

    /// <summary>
    /// A callback that writes exactly the tensor's byte length to the stream it is given; it is called
    /// when the writer reaches the tensor, so the data can be produced (converted, quantized, read from
    /// another file) one tensor at a time.
    /// </summary>
    public static SafetensorsTensorSource FromCallback(Action<Stream> write) => new Callback(write ?? throw new ArgumentNullException(nameof(write)));

    /// <summary>All-zero data that is never written: the file gets a hole there (sparse on Linux file systems).</summary>
    public static SafetensorsTensorSource Zeros { get; } = new ZeroFill();

    private sealed class Bytes(ReadOnlyMemory<byte> data) : SafetensorsTensorSource
    {
        internal override void WriteTo(SafetensorsWriter writer, string name) => writer.Write(name, data.Span);
    }

    private sealed class Callback(Action<Stream> write) : SafetensorsTensorSource
    {
        internal override void WriteTo(SafetensorsWriter writer, string name) => writer.Write(name, write);
    }

    private sealed class ZeroFill : SafetensorsTensorSource
    {
        internal override void WriteTo(SafetensorsWriter writer, string name) => writer.WriteZeros(name);
    }
}

/// <summary>The name, dtype and shape of a tensor to be written (its place in the file is the writer's choice).</summary>
/// <param name="Name">State-dict key.</param>
/// <param name="DType">Element type.</param>
/// <param name="Shape">Row-major shape; empty for a scalar.</param>
public sealed record SafetensorsTensorLayout(string Name, SafetensorsDType DType, long[] Shape)
{
    /// <summary>Bytes of data the tensor takes.</summary>
    public long ByteLength => DType.ByteLength(Shape);
}

/// <summary>A tensor to write: its layout and where its bytes come from.</summary>
/// <param name="Layout">Name, dtype and shape.</param>
/// <param name="Source">The data.</param>
public sealed record SafetensorsTensorEntry(SafetensorsTensorLayout Layout, SafetensorsTensorSource Source)
{
    /// <summary>A tensor whose bytes are in memory.</summary>
    public static SafetensorsTensorEntry FromBytes(string name, SafetensorsDType dtype, long[] shape, ReadOnlyMemory<byte> data) =>
        new(new SafetensorsTensorLayout(name, dtype, shape), SafetensorsTensorSource.FromBytes(data));

    /// <summary>A tensor whose bytes a callback streams when the writer reaches it.</summary>
    public static SafetensorsTensorEntry FromCallback(string name, SafetensorsDType dtype, long[] shape, Action<Stream> write) =>
        new(new SafetensorsTensorLayout(name, dtype, shape), SafetensorsTensorSource.FromCallback(write));

    /// <summary>An all-zero tensor left as a hole in the file (real header, no data written).</summary>
    public static SafetensorsTensorEntry Zeros(string name, SafetensorsDType dtype, long[] shape) =>
        new(new SafetensorsTensorLayout(name, dtype, shape), SafetensorsTensorSource.Zeros);
}
