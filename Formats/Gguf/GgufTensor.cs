namespace QuantPeft.Formats.Gguf;

/// <summary>
/// One tensor of a GGUF file: its name, its dimensions in ggml order (<c>ne[0]</c>, the row length, first: the reverse of
/// a PyTorch shape), its element type and a callback that writes exactly its bytes when the writer reaches it, so a
/// file is written with one tensor in memory at a time.
/// </summary>
/// <param name="Name">The GGUF tensor name, e.g. <c>blk.0.attn_q.weight</c>.</param>
/// <param name="Dimensions">ne[0..n), innermost first.</param>
/// <param name="Type">The element type.</param>
/// <param name="WriteData">Writes the tensor's <see cref="ByteLength"/> bytes to the stream.</param>
public sealed record GgufTensor(string Name, long[] Dimensions, GgmlType Type, Action<Stream> WriteData)
{
    /// <summary>Number of elements.</summary>
    public long ElementCount => Dimensions.Aggregate(1L, (a, b) => a * b);

    /// <summary>Bytes of the tensor's data.</summary>
    public long ByteLength => GgmlTypes.ByteLength(Type, ElementCount);
}
