using System.Buffers.Binary;
using System.Text;

namespace QuantPeft.Formats.Tests.Safetensors;

/// <summary>Composes safetensors bytes by hand, per the format: u64 LE header length, header, data.</summary>
internal static class RawFile
{
    /// <summary>A file whose header is <paramref name="json"/> (not padded) followed by <paramref name="data"/>.</summary>
    public static byte[] Compose(string json, byte[]? data = null) => Compose(Encoding.UTF8.GetBytes(json), data);

    public static byte[] Compose(byte[] header, byte[]? data = null)
    {
        data ??= [];
        var file = new byte[8 + header.Length + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(file, (ulong)header.Length);
        header.CopyTo(file, 8);
        data.CopyTo(file, 8 + header.Length);
        return file;
    }

    /// <summary>A file of <paramref name="json"/> followed by <paramref name="dataLength"/> bytes of 0xAB.</summary>
    public static byte[] Compose(string json, int dataLength) => Compose(json, Enumerable.Repeat((byte)0xAB, dataLength).ToArray());
}
