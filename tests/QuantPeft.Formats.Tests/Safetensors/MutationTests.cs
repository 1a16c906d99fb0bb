using Xunit.Abstractions;
using QuantPeft.Formats.Safetensors;

namespace QuantPeft.Formats.Tests.Safetensors;

/// <summary>
/// Flips random bytes of a valid file thousands of times: the reader may accept the result or refuse
/// it, but only ever with <see cref="SafetensorsFormatException"/>, promptly, and without allocating
/// more than the file's size suggests.
/// </summary>
public sealed class MutationTests(ITestOutputHelper output) : IDisposable
{
    private readonly TestFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    private byte[] ValidFile()
    {
        string path = _folder.File("seed.safetensors");
        var rng = new Random(7);
        var entries = new List<SafetensorsTensorEntry>();
        foreach (var (dt, shape) in new (SafetensorsDType, long[])[]
                 { (SafetensorsDType.F32, [3, 4]), (SafetensorsDType.F16, [8]), (SafetensorsDType.BF16, [2, 2, 2]), (SafetensorsDType.I64, []),
                   (SafetensorsDType.U8, [0, 5]), (SafetensorsDType.F4, [6]), (SafetensorsDType.BOOL, [3]), (SafetensorsDType.F8_E4M3, [4]) })
        {
            var data = new byte[dt.ByteLength(shape)];
            rng.NextBytes(data);
            entries.Add(SafetensorsTensorEntry.FromBytes($"layer.{dt}.weight", dt, shape, data));
        }
        SafetensorsWriter.WriteFile(path, entries, new Dictionary<string, string> { ["format"] = "pt" });
        return File.ReadAllBytes(path);
    }

    [Fact]
    public async Task Random_byte_flips_only_ever_raise_the_format_exception()
    {
        byte[] original = ValidFile();
        int headerEnd = 8 + (int)BitConverter.ToUInt64(original, 0);
        var rng = new Random(12345);
        string path = _folder.File("mutant.safetensors");
        int accepted = 0, refused = 0;
        var kinds = new HashSet<SafetensorsErrorKind>();

        for (int iteration = 0; iteration < 3000; iteration++)
        {
            byte[] mutant = Mutate(original, headerEnd, rng);
            File.WriteAllBytes(path, mutant);
            var task = Task.Run(() =>
            {
                long before = GC.GetAllocatedBytesForCurrentThread();
                Exception? error = null;
                try
                {
                    using var file = SafetensorsFile.Open(path);
                    foreach (var t in file.Tensors)
                    {
                        byte[] copy = file.ReadBytes(t.Name);
                        if (!file.GetSpan(t.Name).SequenceEqual(copy))
                            throw new InvalidOperationException($"mapped and copied bytes of '{t.Name}' differ");
                        if (t.DType is SafetensorsDType.F32 or SafetensorsDType.F16 or SafetensorsDType.BF16 or SafetensorsDType.I64 or SafetensorsDType.U8 or SafetensorsDType.BOOL)
                            file.ReadFloat32(t.Name);
                    }
                }
                catch (Exception e)
                {
                    error = e;
                }
                return (error, GC.GetAllocatedBytesForCurrentThread() - before);
            });
            // A hang surfaces as a TimeoutException naming no iteration, so say which one first.
            var (err, allocated) = await task.WaitAsync(TimeSpan.FromSeconds(10)).ContinueWith(t =>
                t.IsCompletedSuccessfully ? t.Result : throw new TimeoutException($"iteration {iteration} did not finish in 10 s"), TaskScheduler.Default);
            if (err is null)
                accepted++;
            else if (err is SafetensorsFormatException sfe)
            {
                refused++;
                kinds.Add(sfe.Kind);
                Assert.Contains("mutant.safetensors", sfe.Message);
            }
            else
                Assert.Fail($"iteration {iteration}: {err.GetType().Name}: {err.Message}\n{err.StackTrace}");
            Assert.True(allocated < 4_000_000, $"iteration {iteration} allocated {allocated} bytes");
        }

        output.WriteLine($"accepted {accepted}, refused {refused}; kinds: {string.Join(", ", kinds.Order())}");
        Assert.True(refused > 1000, $"only {refused} of 3000 mutants were refused");
        Assert.True(kinds.Count >= 6, $"mutants hit only {string.Join(", ", kinds)}");
        Assert.True(accepted > 0);
    }

    private static byte[] Mutate(byte[] original, int headerEnd, Random rng)
    {
        byte[] m = (byte[])original.Clone();
        switch (rng.Next(10))
        {
            case 0:
                return m[..rng.Next(m.Length)];
            case 1:
                return [.. m, .. new byte[rng.Next(1, 9)]];
            default:
                int flips = rng.Next(1, 4);
                for (int i = 0; i < flips; i++)
                {
                    // Mostly the length field and the header, where the parser's decisions are made.
                    int at = rng.Next(4) switch { 0 => rng.Next(8), 3 => rng.Next(m.Length), _ => rng.Next(8, headerEnd) };
                    m[at] ^= (byte)rng.Next(1, 256);
                }
                return m;
        }
    }
}
