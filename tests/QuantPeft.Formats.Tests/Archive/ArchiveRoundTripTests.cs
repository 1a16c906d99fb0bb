using System.IO.Hashing;
using QuantPeft.Formats.Archive;

namespace QuantPeft.Formats.Tests.Archive;

public class ArchiveRoundTripTests
{
    /// <summary>Payloads of assorted sizes and entropies: empty, tiny, incompressible and compressible multi-MB.</summary>
    internal static List<(string Name, byte[] Payload)> SamplePayloads(int seed)
    {
        var rng = new Random(seed);
        byte[] Random(int n) { var b = new byte[n]; rng.NextBytes(b); return b; }
        byte[] Ramp(int n) { var b = new byte[n]; for (int i = 0; i < n; i++) b[i] = (byte)(i / 1024 + i % 7); return b; }
        var list = new List<(string, byte[])>
        {
            ("empty", []),
            ("one-byte", [0x42]),
            ("optimizer/exp_avg/model.layers.0.self_attn.q_proj.lora_A", Random(4099)),
            ("trainer_state.json", "{\"step\": 1200, \"lr\": 0.0002}"u8.ToArray()),
            ("random-3MiB", Random(3 << 20)),
            ("ramp-6MiB", Ramp(6 << 20)),
            ("zeros-1MiB", new byte[1 << 20]),
            ("名前/ünïcode", Random(100)),
        };
        for (int i = 0; i < 40; i++)
            list.Add(($"small/{i:D3}", Random(rng.Next(0, 3000))));
        return list;
    }

    [Fact]
    public void RoundTrip_ManyEntries_IncludingEmptyAndMultiMegabyte()
    {
        using var dir = new TempDir();
        string path = dir.File("state.qpa");
        var payloads = SamplePayloads(1);
        using (var w = ArchiveWriter.Create(path))
        {
            foreach (var (name, payload) in payloads)
                w.WriteEntry(name, payload);
            Assert.Equal(payloads.Count, w.EntryCount);
            Assert.False(File.Exists(path)); // nothing visible before commit
            w.Commit();
        }
        Assert.Equal(["state.qpa"], dir.Files());

        using var r = ArchiveReader.Open(path);
        Assert.Equal(payloads.Select(p => p.Name), r.Entries.Select(e => e.Name));
        foreach (var (name, payload) in payloads.AsEnumerable().Reverse()) // any order: the index finds each
        {
            var entry = r.GetEntry(name);
            Assert.Equal(payload.Length, entry.Length);
            Assert.Equal(XxHash64.HashToUInt64(payload), entry.Checksum);
            Assert.Equal(payload, r.ReadAllBytes(name));
        }
        // Compressible payloads are stored smaller; the file is far smaller than the sum of payloads.
        Assert.True(r.GetEntry("zeros-1MiB").StoredLength < 1000);
        Assert.True(new FileInfo(path).Length < payloads.Sum(p => (long)p.Payload.Length) / 2);
    }

    [Fact]
    public void StreamingWriteAndRead_InOddSizedChunks()
    {
        using var dir = new TempDir();
        string path = dir.File("stream.qpa");
        var rng = new Random(7);
        var payload = new byte[5_000_003];
        rng.NextBytes(payload.AsSpan(0, 2_000_000)); // half random, half zeros
        using (var w = ArchiveWriter.Create(path, compressionLevel: 1))
        {
            using (var s = w.OpenEntry("chunks"))
            {
                for (int at = 0; at < payload.Length;)
                {
                    int n = Math.Min(rng.Next(1, 70_000), payload.Length - at);
                    s.Write(payload, at, n);
                    at += n;
                }
            }
            w.WriteEntry("from-stream", new MemoryStream(payload));
            w.Commit();
        }
        using var r = ArchiveReader.Open(path);
        foreach (string name in new[] { "chunks", "from-stream" })
        {
            using var s = r.OpenEntry(name);
            Assert.Equal(payload.Length, s.Length);
            var back = new MemoryStream();
            var buffer = new byte[12_345];
            int n;
            while ((n = s.Read(buffer, 0, rng.Next(1, buffer.Length))) > 0)
                back.Write(buffer, 0, n);
            Assert.Equal(payload, back.ToArray());
        }
    }

    [Fact]
    public void SeveralEntryStreams_CanBeReadInterleaved()
    {
        using var dir = new TempDir();
        string path = dir.File("a.qpa");
        var payloads = SamplePayloads(2).Where(p => p.Payload.Length > 1000).Take(4).ToList();
        using (var w = ArchiveWriter.Create(path))
        {
            foreach (var (name, payload) in payloads)
                w.WriteEntry(name, payload);
            w.Commit();
        }
        using var r = ArchiveReader.Open(path);
        var streams = payloads.Select(p => r.OpenEntry(p.Name)).ToList();
        var outputs = payloads.Select(_ => new MemoryStream()).ToList();
        var buffer = new byte[777];
        bool any = true;
        while (any)
        {
            any = false;
            for (int i = 0; i < streams.Count; i++)
            {
                int n = streams[i].Read(buffer);
                outputs[i].Write(buffer, 0, n);
                any |= n > 0;
            }
        }
        for (int i = 0; i < payloads.Count; i++)
        {
            Assert.Equal(payloads[i].Payload, outputs[i].ToArray());
            streams[i].Dispose();
        }
    }

    [Fact]
    public void EmptyArchive_RoundTrips()
    {
        using var dir = new TempDir();
        string path = dir.File("empty.qpa");
        using (var w = ArchiveWriter.Create(path))
            w.Commit();
        using var r = ArchiveReader.Open(path);
        Assert.Empty(r.Entries);
        Assert.False(r.Contains("anything"));
        Assert.Equal(16 + 48, new FileInfo(path).Length); // header + footer, per docs/formats.md
    }

    [Fact]
    public void Commit_ReplacesAnExistingArchive()
    {
        using var dir = new TempDir();
        string path = dir.File("x.qpa");
        foreach (string content in new[] { "first", "second" })
        {
            using var w = ArchiveWriter.Create(path);
            w.WriteEntry("content", System.Text.Encoding.UTF8.GetBytes(content));
            w.Commit();
        }
        using var r = ArchiveReader.Open(path);
        Assert.Equal("second"u8.ToArray(), r.ReadAllBytes("content"));
        Assert.Equal(["x.qpa"], dir.Files());
    }
}
