using System.Buffers.Binary;
using QuantPeft.Formats.Archive;

namespace QuantPeft.Formats.Tests.Archive;

public class ArchiveCorruptionTests
{
    private static (string Path, byte[] Bytes) WriteSample(TempDir dir, int seed = 5)
    {
        string path = dir.File("c.qpa");
        using (var w = ArchiveWriter.Create(path))
        {
            w.WriteEntry("first", "hello archive"u8);
            w.WriteEntry("second", Enumerable.Range(0, 3000).Select(i => (byte)(i * 31 % 251)).ToArray());
            w.WriteEntry("empty", []);
            var rnd = new byte[500];
            new Random(seed).NextBytes(rnd);
            w.WriteEntry("third", rnd);
            w.Commit();
        }
        return (path, File.ReadAllBytes(path));
    }

    /// <summary>Opens the archive and reads every entry to its end, as a checkpoint load would.</summary>
    private static void ReadEverything(string path)
    {
        using var r = ArchiveReader.Open(path);
        foreach (var e in r.Entries)
        {
            using var s = r.OpenEntry(e.Name);
            s.CopyTo(Stream.Null);
        }
    }

    private static ArchiveFormatException AssertCorrupt(string path, string? entry, string problem)
    {
        var e = Assert.Throws<ArchiveFormatException>(() => ReadEverything(path));
        Assert.Equal(path, e.ArchivePath);
        Assert.Contains($"archive '{path}'", e.Message);
        Assert.Equal(entry, e.EntryName);
        if (entry is not null)
            Assert.Contains($"entry '{entry}'", e.Message);
        Assert.Contains(problem, e.Message);
        Assert.IsAssignableFrom<QuantPeftException>(e);
        return e;
    }

    [Fact]
    public void BitFlipInPayload_IsNamedByEntry()
    {
        using var dir = new TempDir();
        var (path, bytes) = WriteSample(dir);
        using (var r = ArchiveReader.Open(path))
        {
            var second = r.GetEntry("second");
            long frameStart = 16 + 48 + "first".Length + r.GetEntry("first").StoredLength + 48 + "second".Length;
            bytes[frameStart + second.StoredLength / 2] ^= 0x10;
        }
        File.WriteAllBytes(path, bytes);
        AssertCorrupt(path, "second", "checksum mismatch");
    }

    [Fact]
    public void Truncated_IsReported()
    {
        using var dir = new TempDir();
        var (path, bytes) = WriteSample(dir);
        File.WriteAllBytes(path, bytes[..(bytes.Length - 10)]);
        AssertCorrupt(path, null, "truncated");
        File.WriteAllBytes(path, bytes[..10]);
        AssertCorrupt(path, null, "truncated");
    }

    [Fact]
    public void BadMagic_IsReported()
    {
        using var dir = new TempDir();
        var (path, bytes) = WriteSample(dir);
        bytes[1] = (byte)'X';
        File.WriteAllBytes(path, bytes);
        AssertCorrupt(path, null, "not a QuantPeft archive");
        File.WriteAllText(path, "{\"json\": true}");
        AssertCorrupt(path, null, "not a QuantPeft archive");
        File.WriteAllBytes(path, []);
        AssertCorrupt(path, null, "not a QuantPeft archive");
    }

    [Fact]
    public void UnknownVersion_IsRejectedClearly()
    {
        using var dir = new TempDir();
        string path = dir.File("v2.qpa");
        File.WriteAllBytes(path, SpecArchive.Build([("a", [1, 2, 3])], version: 2));
        AssertCorrupt(path, null, "format version 2 is not supported; this build reads version 1");
    }

    [Fact]
    public void ReservedFlags_AreRejected()
    {
        using var dir = new TempDir();
        var (path, bytes) = WriteSample(dir);
        bytes[12] = 1;
        File.WriteAllBytes(path, bytes);
        AssertCorrupt(path, null, "flags");
    }

    [Fact]
    public void DuplicateEntryName_IsRejected()
    {
        using var dir = new TempDir();
        string path = dir.File("dup.qpa");
        File.WriteAllBytes(path, SpecArchive.Build([("state", [1]), ("other", [2]), ("state", [3])]));
        var e = Assert.Throws<ArchiveFormatException>(() => ArchiveReader.Open(path));
        Assert.Equal("state", e.EntryName);
        Assert.Contains($"archive '{path}': entry 'state': appears twice", e.Message);
    }

    [Fact]
    public void MissingEntry_IsNamed()
    {
        using var dir = new TempDir();
        var (path, _) = WriteSample(dir);
        using var r = ArchiveReader.Open(path);
        var e = Assert.Throws<ArchiveFormatException>(() => r.OpenEntry("optimizer/step"));
        Assert.Equal("optimizer/step", e.EntryName);
        Assert.Contains($"archive '{path}': entry 'optimizer/step': not in the archive", e.Message);
        Assert.Throws<ArchiveFormatException>(() => r.GetEntry("nope"));
        Assert.Throws<ArchiveFormatException>(() => r.ReadAllBytes("nope"));
    }

    [Fact]
    public void MissingFile_IsNamed()
    {
        using var dir = new TempDir();
        string path = dir.File("absent.qpa");
        var e = Assert.Throws<ArchiveFormatException>(() => ArchiveReader.Open(path));
        Assert.Contains(path, e.Message);
        Assert.Contains("not found", e.Message);
    }

    [Fact]
    public void EntryHeaderCorruption_IsNamedByEntry()
    {
        using var dir = new TempDir();
        var (path, bytes) = WriteSample(dir);
        bytes[16 + 8] ^= 0x01; // first entry's recorded payload length, in its header (the index is intact)
        File.WriteAllBytes(path, bytes);
        AssertCorrupt(path, "first", "entry header");
    }

    [Fact]
    public void IndexCorruption_IsReported()
    {
        using var dir = new TempDir();
        var (path, bytes) = WriteSample(dir);
        long indexOffset = (long)BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(bytes.Length - 48));
        bytes[indexOffset + 3] ^= 0x80;
        File.WriteAllBytes(path, bytes);
        AssertCorrupt(path, null, "table of contents fails its checksum");
    }

    // Every byte of an archive is covered by a check (docs/formats.md), so every single-bit flip must be
    // detected, and always as an ArchiveFormatException: never another exception, never silent success.
    [Fact]
    public void RandomBitFlips_AlwaysYieldArchiveFormatException()
    {
        using var dir = new TempDir();
        var (path, original) = WriteSample(dir);
        var rng = new Random(20260);
        string flipped = dir.File("flipped.qpa");
        for (int trial = 0; trial < 600; trial++)
        {
            var bytes = (byte[])original.Clone();
            int bit = rng.Next(bytes.Length * 8);
            bytes[bit / 8] ^= (byte)(1 << (bit % 8));
            File.WriteAllBytes(flipped, bytes);
            var e = Record.Exception(() => ReadEverything(flipped));
            Assert.True(e is ArchiveFormatException, $"flip of bit {bit} (byte {bit / 8} of {bytes.Length}): {e?.GetType().Name ?? "no exception"} {e?.Message}");
        }
    }

    [Fact]
    public void EveryTruncation_YieldsArchiveFormatException()
    {
        using var dir = new TempDir();
        var (_, original) = WriteSample(dir);
        string cut = dir.File("cut.qpa");
        for (int length = 0; length < original.Length; length += 7)
        {
            File.WriteAllBytes(cut, original[..length]);
            var e = Record.Exception(() => ReadEverything(cut));
            Assert.True(e is ArchiveFormatException, $"truncated to {length} bytes: {e?.GetType().Name ?? "no exception"}");
        }
    }
}
