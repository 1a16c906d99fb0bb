using System.Buffers.Binary;
using System.Text;
using QuantPeft.Formats.Archive;
using ZstdSharp;

namespace QuantPeft.Formats.Tests.Archive;

/// <summary>The writer and reader against the byte layout documented in docs/formats.md.</summary>
public class ArchiveSpecTests
{
    [Fact]
    public void Reader_ReadsAnArchiveBuiltFromTheDocument()
    {
        using var dir = new TempDir();
        string path = dir.File("spec.qpa");
        var payloads = ArchiveRoundTripTests.SamplePayloads(3).Take(10).ToList();
        File.WriteAllBytes(path, SpecArchive.Build(payloads));
        using var r = ArchiveReader.Open(path);
        Assert.Equal(payloads.Select(p => p.Name), r.Entries.Select(e => e.Name));
        foreach (var (name, payload) in payloads)
            Assert.Equal(payload, r.ReadAllBytes(name));
    }

    [Fact]
    public void Writer_Output_ParsesByTheDocument()
    {
        using var dir = new TempDir();
        string path = dir.File("w.qpa");
        byte[] alpha = Encoding.ASCII.GetBytes(new string('a', 5000));
        using (var w = ArchiveWriter.Create(path))
        {
            w.WriteEntry("alpha", alpha);
            w.WriteEntry("b", [1, 2, 3]);
            w.Commit();
        }
        byte[] f = File.ReadAllBytes(path);
        var s = f.AsSpan();
        Assert.Equal(new byte[] { 0x89, 0x51, 0x50, 0x41, 0x52, 0x0D, 0x0A, 0x1A }, f[..8]);
        Assert.Equal(1u, BinaryPrimitives.ReadUInt32LittleEndian(s[8..]));
        Assert.Equal(0u, BinaryPrimitives.ReadUInt32LittleEndian(s[12..]));

        // First entry at offset 16: tag, codec, reserved, name length, lengths, checksums, name, header checksum, frame.
        Assert.Equal("QPAE", Encoding.ASCII.GetString(f, 16, 4));
        Assert.Equal(1, f[20]);
        Assert.Equal(0, f[21]);
        Assert.Equal(5, BinaryPrimitives.ReadUInt16LittleEndian(s[22..]));
        Assert.Equal(5000ul, BinaryPrimitives.ReadUInt64LittleEndian(s[24..]));
        ulong stored = BinaryPrimitives.ReadUInt64LittleEndian(s[32..]);
        Assert.Equal("alpha", Encoding.UTF8.GetString(f, 56, 5));
        int frameAt = 16 + 48 + 5;
        byte[] frame = f[frameAt..(frameAt + (int)stored)];
        Assert.Equal(alpha, new Decompressor().Unwrap(frame).ToArray());

        // Footer: the last 48 bytes, ending in the footer magic, pointing at the index.
        var footer = s[^48..];
        Assert.Equal("QPAREND\u001a", Encoding.ASCII.GetString(footer[40..]));
        Assert.Equal(2ul, BinaryPrimitives.ReadUInt64LittleEndian(footer[16..]));
        long indexOffset = (long)BinaryPrimitives.ReadUInt64LittleEndian(footer);
        long indexLength = (long)BinaryPrimitives.ReadUInt64LittleEndian(footer[8..]);
        Assert.Equal(f.Length - 48, indexOffset + indexLength);
        // Index record 0: offset 16, then the entry header bytes [4, 40 + N).
        Assert.Equal(16ul, BinaryPrimitives.ReadUInt64LittleEndian(s[(int)indexOffset..]));
        Assert.True(s.Slice((int)indexOffset + 8, 36 + 5).SequenceEqual(s.Slice(20, 36 + 5)));
        // Second entry starts right after the first frame.
        Assert.Equal((ulong)frameAt + stored, BinaryPrimitives.ReadUInt64LittleEndian(s[((int)indexOffset + 8 + 41)..]));
    }
}
