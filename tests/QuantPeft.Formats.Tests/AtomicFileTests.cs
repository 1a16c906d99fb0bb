using System.Text;

namespace QuantPeft.Formats.Tests;

public sealed class AtomicFileTests : IDisposable
{
    private readonly TestFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    [Fact]
    public void ReplacesTheTargetAndLeavesOnlyIt()
    {
        string path = _folder.File("plan.json");
        File.WriteAllText(path, "old content, longer than the new one");

        AtomicFile.WriteAllText(path, "néw");

        // UTF-8 without a byte-order mark: 'é' is the two bytes C3 A9 and nothing precedes 'n'.
        Assert.Equal(new byte[] { 0x6E, 0xC3, 0xA9, 0x77 }, File.ReadAllBytes(path));
        Assert.Equal(["plan.json"], _folder.Entries());
    }

    [Fact]
    public void StreamAndByteWritersProduceTheSameFile()
    {
        byte[] bytes = Enumerable.Range(0, 200_000).Select(i => (byte)(i * 7)).ToArray();
        AtomicFile.WriteAllBytes(_folder.File("a.bin"), bytes);
        AtomicFile.Write(_folder.File("b.bin"), s => { s.Write(bytes, 0, 1000); s.Write(bytes, 1000, bytes.Length - 1000); });

        Assert.Equal(bytes, File.ReadAllBytes(_folder.File("a.bin")));
        Assert.Equal(bytes, File.ReadAllBytes(_folder.File("b.bin")));
        Assert.Equal(["a.bin", "b.bin"], _folder.Entries());
    }

    [Fact]
    public void AFailedWriteKeepsTheOldContentAndRemovesItsTemporary()
    {
        string path = _folder.File("metrics.jsonl");
        File.WriteAllText(path, "step 1\n");

        var e = Assert.Throws<InvalidOperationException>(() => AtomicFile.Write(path, s =>
        {
            s.Write(Encoding.UTF8.GetBytes("half a line"));
            s.Flush();
            throw new InvalidOperationException("disk full");
        }));

        Assert.Equal("disk full", e.Message);
        Assert.Equal("step 1\n", File.ReadAllText(path));
        Assert.Equal(["metrics.jsonl"], _folder.Entries());
    }

    [Fact]
    public void AMissingDirectoryIsNamedAndNothingIsCreated()
    {
        string missing = Path.Combine(_folder.Path, "no-such-folder");
        var e = Assert.Throws<DirectoryNotFoundException>(() => AtomicFile.WriteAllText(Path.Combine(missing, "x.json"), "x"));

        Assert.Contains("no-such-folder", e.Message);
        Assert.False(Directory.Exists(missing));
        Assert.Empty(_folder.Entries());
    }

    [Fact]
    public void DirectorySyncReachesTheFileSystem()
    {
        if (!OperatingSystem.IsLinux()) return;
        AtomicFile.SyncDirectory(_folder.Path);
        // The same call on a path that does not exist fails in open(2): the flush is a real system call, not a no-op.
        var e = Assert.Throws<IOException>(() => AtomicFile.SyncDirectory(Path.Combine(_folder.Path, "gone")));
        Assert.Contains("errno 2", e.Message); // ENOENT
    }
}
