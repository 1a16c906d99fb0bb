using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Engines;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using QuantPeft.Quant.Codecs;
using QuantPeft.Quant.Kernels;

namespace QuantPeft.Perf;

/// <summary>
/// NF4 decode/encode throughput of the SIMD CPU codec on a 4096×11008 matrix (Llama-7B up_proj), single-threaded and
/// on all cores, beside memcpy of a buffer the size of the decoded output measured in the same run.
/// GB/s = (bytes read + bytes written) / time; the byte counts are printed by <see cref="Setup"/>.
/// </summary>
[Config(typeof(ShortInProcessConfig))]
public unsafe class QuantCodecBenchmarks
{
    /// <summary>
    /// A short in-process job: on the shared 2-core machine BenchmarkDotNet's out-of-process build of the whole
    /// solution (TorchSharp included) exceeds its 2-minute build timeout.
    /// </summary>
    private sealed class ShortInProcessConfig : ManualConfig
    {
        public ShortInProcessConfig() =>
            AddJob(Job.Default.WithStrategy(RunStrategy.Throughput).WithLaunchCount(1).WithWarmupCount(2)
                .WithIterationCount(8).WithToolchain(InProcessEmitToolchain.Instance));
    }

    private const int Rows = 4096, Columns = 11008, Count = Rows * Columns;

    private float[] _weights = [];
    private byte[] _packed = [];
    private float[] _absmax = [];
    // Outputs and memcpy buffers are 64-byte aligned native memory, as libtorch allocates tensors (the codec
    // streams its stores into aligned outputs of 32 MB or more; a managed array gives no such alignment).
    private nint _outF32, _outBf16, _copySourceBf16, _copyTargetBf16, _copySourceF32, _copyTargetF32;
    private SimdCodec _codec = SimdCodec.Instance;

    /// <summary>Threads: 1, or 0 for every core.</summary>
    [Params(1, 0)]
    public int Threads { get; set; }

    /// <summary>
    /// Byte offset of the decode outputs from a 64-byte boundary: 0 lets the codec stream its stores
    /// (non-temporal), 32 forces plain stores, for an A/B comparison in the same run.
    /// </summary>
    [Params(0, 32)]
    public int OutputOffset { get; set; }

    /// <summary>Quantizes a seeded N(0, 0.02²) matrix once and allocates all outputs.</summary>
    [GlobalSetup]
    public void Setup()
    {
        _codec = new SimdCodec(Threads);
        var rng = new Random(42);
        _weights = new float[Count];
        for (int i = 0; i < Count; i++) _weights[i] = (float)((rng.NextDouble() * 2 - 1) * 0.05);
        _packed = new byte[Count / 2];
        _absmax = new float[Count / 64];
        SimdCodec.Instance.QuantizeFourBit(_weights, FourBitType.Nf4, 64, _packed, _absmax);
        _outF32 = Aligned(Count * 4L + 64);
        _outBf16 = Aligned(Count * 2L + 64);
        _copySourceBf16 = Aligned(Count * 2L);
        _copyTargetBf16 = Aligned(Count * 2L);
        _copySourceF32 = Aligned(Count * 4L);
        _copyTargetF32 = Aligned(Count * 4L);
        rng.NextBytes(Bytes(_copySourceBf16, Count * 2L));
        rng.NextBytes(Bytes(_copySourceF32, Count * 4L));
        Bytes(_copyTargetBf16, Count * 2L).Clear();
        Bytes(_copyTargetF32, Count * 4L).Clear();
        Bytes(_outBf16, Count * 2L + 64).Clear();
        Bytes(_outF32, Count * 4L + 64).Clear();
        long packedBytes = _packed.Length + _absmax.Length * 4L;
        Console.WriteLine($"// bytes: decode→bf16 {packedBytes + Count * 2L}, decode→f32 {packedBytes + Count * 4L}, " +
            $"encode f32 {Count * 4L + packedBytes}, memcpy bf16-size {Count * 4L}, memcpy f32-size {Count * 8L} (read + written)");
    }

    /// <summary>NF4 → bfloat16.</summary>
    [Benchmark]
    public void DecodeNf4ToBf16() => _codec.DequantizeFourBit(_packed, _absmax, FourBitType.Nf4, 64, new Span<ushort>((void*)(_outBf16 + OutputOffset), Count));

    /// <summary>NF4 → float32.</summary>
    [Benchmark]
    public void DecodeNf4ToF32() => _codec.DequantizeFourBit(_packed, _absmax, FourBitType.Nf4, 64, new Span<float>((void*)(_outF32 + OutputOffset), Count));

    /// <summary>float32 → NF4 (codes and absmax, no double quantization).</summary>
    [Benchmark]
    public void EncodeF32ToNf4() => _codec.QuantizeFourBit(_weights, FourBitType.Nf4, 64, _packed, _absmax);

    /// <summary>memcpy of a buffer the size of the bf16 output (Span.CopyTo, in as many chunks as threads).</summary>
    [Benchmark]
    public void MemcpyBf16Size() => Copy(_copySourceBf16, _copyTargetBf16, Count * 2L);

    /// <summary>memcpy of a buffer the size of the f32 output.</summary>
    [Benchmark]
    public void MemcpyF32Size() => Copy(_copySourceF32, _copyTargetF32, Count * 4L);

    /// <summary>Frees the native buffers.</summary>
    [GlobalCleanup]
    public void Cleanup()
    {
        foreach (nint p in new[] { _outF32, _outBf16, _copySourceBf16, _copyTargetBf16, _copySourceF32, _copyTargetF32 })
            NativeMemory.AlignedFree((void*)p);
    }

    private static nint Aligned(long bytes) => (nint)NativeMemory.AlignedAlloc((nuint)bytes, 64);

    private static Span<byte> Bytes(nint p, long bytes) => new((void*)p, checked((int)bytes));

    private void Copy(nint source, nint target, long bytes)
    {
        int parts = _codec.MaxThreads * 8;
        long chunk = (bytes + parts - 1) / parts;
        Parallel.For(0, parts, new ParallelOptions { MaxDegreeOfParallelism = _codec.MaxThreads }, p =>
        {
            long start = p * chunk, length = Math.Min(chunk, bytes - start);
            if (length > 0) Bytes(source + (nint)start, length).CopyTo(Bytes(target + (nint)start, length));
        });
    }
}
