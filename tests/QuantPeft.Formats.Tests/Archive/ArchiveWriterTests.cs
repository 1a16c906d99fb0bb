using QuantPeft.Formats.Archive;

namespace QuantPeft.Formats.Tests.Archive;

public class ArchiveWriterTests
{
    [Fact]
    public void DisposeWithoutCommit_LeavesNothing()
    {
        using var dir = new TempDir();
        using (var w = ArchiveWriter.Create(dir.File("a.qpa")))
        {
            w.WriteEntry("x", new byte[100_000]);
        }
        Assert.Empty(dir.Files());
    }

    [Fact]
    public void FailingSource_LeavesExistingArchiveUntouched_AndNoTemporaryFile()
    {
        using var dir = new TempDir();
        string path = dir.File("a.qpa");
        using (var w = ArchiveWriter.Create(path))
        {
            w.WriteEntry("old", "previous checkpoint"u8);
            w.Commit();
        }
        byte[] before = File.ReadAllBytes(path);

        using (var w = ArchiveWriter.Create(path))
        {
            w.WriteEntry("ok", new byte[10]);
            Assert.Throws<IOException>(() => w.WriteEntry("broken", new FailingStream(failAfter: 3 << 20)));
            // The copy failed half way; the writer refuses to commit a truncated entry.
            Assert.Throws<InvalidOperationException>(w.Commit);
        }
        Assert.Equal(before, File.ReadAllBytes(path));
        Assert.Equal(["a.qpa"], dir.Files());
    }

    [Fact]
    public void Misuse_IsRejected()
    {
        using var dir = new TempDir();
        using var w = ArchiveWriter.Create(dir.File("a.qpa"));
        w.WriteEntry("a", [1]);
        var dup = Assert.Throws<ArgumentException>(() => w.WriteEntry("a", [2]));
        Assert.Contains("'a'", dup.Message);
        Assert.Throws<ArgumentException>(() => w.OpenEntry(""));
        Assert.Throws<ArgumentException>(() => w.OpenEntry("nul\0name"));
        Assert.Throws<ArgumentException>(() => w.OpenEntry(new string('n', 1025)));
        Assert.Throws<ArgumentException>(() => w.OpenEntry("bad\ud800surrogate"));
        using (var open = w.OpenEntry("b"))
        {
            Assert.Throws<InvalidOperationException>(() => w.OpenEntry("c"));
            Assert.Throws<InvalidOperationException>(w.Commit);
        }
        w.Commit();
        Assert.Throws<InvalidOperationException>(() => w.OpenEntry("d"));
        Assert.Throws<ArgumentOutOfRangeException>(() => ArchiveWriter.Create(dir.File("b.qpa"), compressionLevel: 0));
    }

    [Fact]
    public void MaxLengthName_RoundTrips()
    {
        using var dir = new TempDir();
        string path = dir.File("n.qpa");
        string name = new('é', 512); // 1024 UTF-8 bytes
        using (var w = ArchiveWriter.Create(path))
        {
            w.WriteEntry(name, [9]);
            w.Commit();
        }
        using var r = ArchiveReader.Open(path);
        Assert.Equal([9], r.ReadAllBytes(name));
    }

    /// <summary>Yields zeros, then fails like a disk that went away.</summary>
    private sealed class FailingStream(long failAfter) : Stream
    {
        private long _position;

        public override int Read(byte[] buffer, int offset, int count)
        {
            if (_position >= failAfter)
                throw new IOException("simulated read failure");
            int n = (int)Math.Min(count, failAfter - _position);
            Array.Clear(buffer, offset, n);
            _position += n;
            return n;
        }

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => _position; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
