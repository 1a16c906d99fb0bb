using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using QuantPeft.Formats.HuggingFace;
using QuantPeft.Formats.Safetensors;

namespace QuantPeft.Perf;

/// <summary>
/// Tensor read throughput: open a file and copy every tensor into a managed buffer through a plain
/// FileStream (the baseline), through <see cref="SafetensorsFile.CopyTo(string, Span{byte})"/> (positioned
/// reads), and out of the memory mapping; plus BF16 widening to float32. The file is in the page cache
/// (it was just written), so this is the warm-cache load path.
/// </summary>
[Config(typeof(ShortInProcessConfig))]
[MemoryDiagnoser]
public class SafetensorsReadBenchmarks
{
    private const int TensorMB = 64;
    private string _folder = "";
    private string _path = "";
    private byte[] _buffer = [];
    private byte[] _floatBuffer = [];

    /// <summary>File size in MiB (tensor data).</summary>
    [Params(16, 256, 1024)]
    public int SizeMB { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _folder = Directory.CreateTempSubdirectory("qpeft-bench-").FullName;
        _path = Path.Combine(_folder, "bench.safetensors");
        int tensorMB = Math.Min(SizeMB, TensorMB);
        var rng = new Random(1);
        var chunk = new byte[1 << 20];
        var entries = Enumerable.Range(0, SizeMB / tensorMB).Select(i => SafetensorsTensorEntry.FromCallback(
            $"model.layers.{i}.mlp.up_proj.weight", SafetensorsDType.BF16, [tensorMB * 1024L, 512], s =>
            {
                for (int mb = 0; mb < tensorMB; mb++)
                {
                    rng.NextBytes(chunk);
                    s.Write(chunk);
                }
            }));
        SafetensorsWriter.WriteFile(_path, entries);
        _buffer = new byte[tensorMB << 20];
        _floatBuffer = new byte[tensorMB << 21];
    }

    [GlobalCleanup]
    public void Cleanup() => Directory.Delete(_folder, recursive: true);

    [Benchmark(Baseline = true, Description = "FileStream read")]
    public long FileStreamRead()
    {
        using var file = SafetensorsFile.Open(_path);
        using var stream = new FileStream(_path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1);
        long total = 0;
        foreach (var t in file.Tensors)
        {
            stream.Position = t.FileOffset;
            stream.ReadExactly(_buffer.AsSpan(0, (int)t.ByteLength));
            total += t.ByteLength;
        }
        return total;
    }

    [Benchmark(Description = "Positioned read (CopyTo)")]
    public long DirectRead()
    {
        using var file = SafetensorsFile.Open(_path);
        long total = 0;
        foreach (var t in file.Tensors)
        {
            file.CopyTo(t.Name, _buffer.AsSpan(0, (int)t.ByteLength));
            total += t.ByteLength;
        }
        return total;
    }

    [Benchmark(Description = "Memory-mapped span copy (GetSpan)")]
    public long MappedCopy()
    {
        using var file = SafetensorsFile.Open(_path);
        long total = 0;
        foreach (var t in file.Tensors)
        {
            file.GetSpan(t.Name).CopyTo(_buffer);
            total += t.ByteLength;
        }
        return total;
    }

    [Benchmark(Description = "BF16 -> float32 (ReadFloat32)")]
    public long Bf16ToFloat32()
    {
        using var file = SafetensorsFile.Open(_path);
        var floats = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(_floatBuffer.AsSpan());
        long total = 0;
        foreach (var t in file.Tensors)
        {
            file.ReadFloat32(t.Name, floats[..(int)t.ElementCount]);
            total += t.ByteLength;
        }
        return total;
    }
}

/// <summary>
/// Header-only open of a sparse Llama-2-7B-shaped sharded checkpoint (3 shards, 291 tensors, 13.5 GB of
/// holes), and writing that checkpoint from <see cref="ModelSpec.Tensors()"/>.
/// </summary>
[Config(typeof(ShortInProcessConfig))]
[MemoryDiagnoser]
public class SafetensorsOpenBenchmarks
{
    private string _folder = "";
    private string _writeFolder = "";

    private static readonly ModelSpec Llama2_7B = new()
    {
        ModelType = "llama", NumLayers = 32, HiddenSize = 4096, IntermediateSize = 11008,
        NumHeads = 32, NumKvHeads = 32, VocabSize = 32000,
    };

    private static IEnumerable<SafetensorsTensorEntry> Entries() =>
        Llama2_7B.Tensors().Select(t => SafetensorsTensorEntry.Zeros(t.Name, SafetensorsDType.BF16, t.Shape));

    [GlobalSetup]
    public void Setup()
    {
        _folder = Directory.CreateTempSubdirectory("qpeft-bench-7b-").FullName;
        _writeFolder = Directory.CreateTempSubdirectory("qpeft-bench-7b-w-").FullName;
        SafetensorsShardedWriter.Write(_folder, Entries(), 5_000_000_000, new Dictionary<string, string> { ["format"] = "pt" });
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        Directory.Delete(_folder, recursive: true);
        Directory.Delete(_writeFolder, recursive: true);
    }

    [Benchmark(Description = "Open sparse 7B sharded checkpoint (headers only)")]
    public long OpenSharded7B()
    {
        using var checkpoint = SafetensorsCheckpoint.Open(_folder);
        return checkpoint.TotalElementCount;
    }

    [Benchmark(Description = "Write sparse 7B sharded checkpoint")]
    public long WriteSharded7B() =>
        SafetensorsShardedWriter.Write(_writeFolder, Entries(), 5_000_000_000, new Dictionary<string, string> { ["format"] = "pt" }).TotalSize;
}

/// <summary>
/// BenchmarkDotNet's short job, run in-process: on the shared 2-core machine, building the generated
/// out-of-process project (which drags in libtorch through the perf project's references) exceeds
/// BenchmarkDotNet's 2-minute build timeout.
/// </summary>
public sealed class ShortInProcessConfig : ManualConfig
{
    /// <summary>Adds the short in-process job.</summary>
    public ShortInProcessConfig() => AddJob(Job.ShortRun.WithToolchain(InProcessEmitToolchain.Instance));
}
