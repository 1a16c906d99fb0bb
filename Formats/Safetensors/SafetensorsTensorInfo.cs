namespace QuantPeft.Formats.Safetensors;

/// <summary>
/// One tensor as the header describes it: where its bytes are and how to interpret them.
/// Instances come from a validated header, so the byte range always holds exactly
/// <see cref="ElementCount"/> elements of <see cref="DType"/>.
/// </summary>
public sealed class SafetensorsTensorInfo
{
    private readonly long[] _shape;

    internal SafetensorsTensorInfo(string name, SafetensorsDType dtype, long[] shape, long dataBegin, long dataEnd, long dataSectionOffset, long elementCount)
    {
        Name = name;
        DType = dtype;
        _shape = shape;
        DataBegin = dataBegin;
        DataEnd = dataEnd;
        FileOffset = dataSectionOffset + dataBegin;
        ElementCount = elementCount;
    }

    /// <summary>The tensor's name (a Hugging Face state-dict key).</summary>
    public string Name { get; }

    /// <summary>Element type.</summary>
    public SafetensorsDType DType { get; }

    /// <summary>Shape, row-major; a fresh copy on every call, so callers may keep or modify it.</summary>
    public long[] Shape => (long[])_shape.Clone();

    /// <summary>Number of dimensions (0 for a scalar).</summary>
    public int Rank => _shape.Length;

    /// <summary>Size of dimension <paramref name="axis"/> without copying the shape.</summary>
    public long Dim(int axis) => _shape[axis];

    /// <summary>Start of the data, relative to the start of the data section (header <c>data_offsets[0]</c>).</summary>
    public long DataBegin { get; }

    /// <summary>Exclusive end of the data, relative to the start of the data section (<c>data_offsets[1]</c>).</summary>
    public long DataEnd { get; }

    /// <summary>Absolute position of the first data byte in the file (8 + header length + <see cref="DataBegin"/>).</summary>
    public long FileOffset { get; }

    /// <summary>Product of the shape (1 for a scalar, 0 for an empty tensor).</summary>
    public long ElementCount { get; }

    /// <summary>Bytes of data.</summary>
    public long ByteLength => DataEnd - DataBegin;

    /// <summary>The shape as the header writes it, e.g. <c>[4096, 11008]</c>.</summary>
    public string ShapeText => "[" + string.Join(", ", _shape) + "]";

    /// <inheritdoc/>
    public override string ToString() => $"{Name}: {DType} {ShapeText} @ [{DataBegin}, {DataEnd})";
}
