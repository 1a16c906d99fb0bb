using System.Buffers.Binary;
using System.IO.Hashing;
using System.Text;
using ZstdSharp;

namespace QuantPeft.Formats.Tests.Archive;

/// <summary>
/// Builds archive bytes straight from the layout in docs/formats.md, without the product's writer,
/// so tests can check that the reader follows the document and craft files the writer refuses to make.
/// </summary>
internal static class SpecArchive
{
    public static byte[] Build(IEnumerable<(string Name, byte[] Payload)> entries, uint version = 1)
    {
        var file = new MemoryStream();
        var index = new MemoryStream();
        file.Write([0x89, (byte)'Q', (byte)'P', (byte)'A', (byte)'R', 0x0D, 0x0A, 0x1A]);
        WriteU32(file, version);
        WriteU32(file, 0);
        long count = 0;
        foreach (var (name, payload) in entries)
        {
            byte[] stored = new Compressor(3).Wrap(payload).ToArray();
            byte[] nameBytes = Encoding.UTF8.GetBytes(name);
            var header = new MemoryStream();
            WriteU32(header, 0x45415051); // "QPAE"
            header.WriteByte(1); // zstd
            header.WriteByte(0);
            WriteU16(header, (ushort)nameBytes.Length);
            WriteU64(header, (ulong)payload.Length);
            WriteU64(header, (ulong)stored.Length);
            WriteU64(header, XxHash64.HashToUInt64(payload));
            WriteU64(header, XxHash64.HashToUInt64(stored));
            header.Write(nameBytes);
            byte[] h = header.ToArray();
            WriteU64(index, (ulong)file.Position);
            index.Write(h, 4, h.Length - 4);
            file.Write(h);
            WriteU64(file, XxHash64.HashToUInt64(h));
            file.Write(stored);
            count++;
        }
        byte[] indexBytes = index.ToArray();
        var footer = new MemoryStream();
        WriteU64(footer, (ulong)file.Position);
        WriteU64(footer, (ulong)indexBytes.Length);
        WriteU64(footer, (ulong)count);
        WriteU64(footer, XxHash64.HashToUInt64(indexBytes));
        WriteU64(footer, XxHash64.HashToUInt64(footer.ToArray()));
        footer.Write("QPAREND\u001a"u8);
        file.Write(indexBytes);
        file.Write(footer.ToArray());
        return file.ToArray();
    }

    private static void WriteU16(Stream s, ushort v) { Span<byte> b = stackalloc byte[2]; BinaryPrimitives.WriteUInt16LittleEndian(b, v); s.Write(b); }
    private static void WriteU32(Stream s, uint v) { Span<byte> b = stackalloc byte[4]; BinaryPrimitives.WriteUInt32LittleEndian(b, v); s.Write(b); }
    private static void WriteU64(Stream s, ulong v) { Span<byte> b = stackalloc byte[8]; BinaryPrimitives.WriteUInt64LittleEndian(b, v); s.Write(b); }
}
