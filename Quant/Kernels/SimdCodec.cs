using System.Buffers;
using System.Numerics.Tensors;
using QuantPeft.Quant.Codecs;

namespace QuantPeft.Quant.Kernels;

/// <summary>
/// The CPU codec: vectorised per block (AVX-512 / AVX2 where present, scalar otherwise) and multi-threaded over
/// chunks of whole blocks with <see cref="Parallel.For(int, int, ParallelOptions, Action{int})"/>. Outputs are
/// bit-identical to <see cref="ReferenceCodec"/> (see the remarks there for why the arithmetic allows it).
/// </summary>
public sealed unsafe class SimdCodec : IBlockwiseCodec
{
    // A chunk is at least this many elements, so per-task overhead stays small next to the work.
    private const int ChunkElements = 1 << 16;

    /// <summary>
    /// Decode outputs of at least this many bytes (and 64-byte aligned, as libtorch allocates) are written with
    /// non-temporal stores when the codec runs on more than one thread: they exceed the caches, so the stores
    /// would otherwise first read every destination line from memory. Smaller outputs keep plain stores, because
    /// callers such as <c>Linear4bit</c> read a slab again right after decoding it and want it still in cache;
    /// single-threaded decodes keep them too, because one core streaming bf16 measured about 2× slower than with
    /// plain stores here (perf/results/quant-codecs.md), while two cores streaming were faster.
    /// </summary>
    public const long StreamingThresholdBytes = 32L << 20;

    private readonly ParallelOptions _parallel;
    private readonly long _streamingThreshold;

    /// <summary>Creates a codec using up to <paramref name="maxThreads"/> threads (default: all processors).</summary>
    public SimdCodec(int maxThreads = 0) : this(maxThreads, StreamingThresholdBytes)
    {
    }

    // Tests lower the threshold to exercise the streaming stores on small aligned outputs.
    internal SimdCodec(int maxThreads, long streamingThresholdBytes)
    {
        _parallel = new ParallelOptions { MaxDegreeOfParallelism = maxThreads > 0 ? maxThreads : Environment.ProcessorCount };
        _streamingThreshold = streamingThresholdBytes;
    }

    /// <summary>A codec using every processor.</summary>
    public static SimdCodec Instance { get; } = new();

    /// <summary>The number of threads this codec may use.</summary>
    public int MaxThreads => _parallel.MaxDegreeOfParallelism;

    /// <inheritdoc/>
    public void QuantizeFourBit(ReadOnlySpan<float> input, FourBitType type, int blockSize, Span<byte> packed, Span<float> absmax)
    {
        CodecChecks.FourBit(input.Length, blockSize, packed.Length, absmax.Length);
        CodeBook book = CodeBook.ForFourBit(type);
        fixed (float* x = input) fixed (byte* p = packed) fixed (float* a = absmax)
        {
            nint xs = (nint)x, ps = (nint)p, ab = (nint)a;
            int n = input.Length;
            ForEachChunk(n, blockSize, (start, end) =>
                SimdFourBitEncoder.Encode((float*)xs, n, book, blockSize, start, end, (byte*)ps, (float*)ab));
        }
    }

    /// <inheritdoc/>
    public void QuantizeFourBit(ReadOnlySpan<ushort> input, FourBitType type, int blockSize, Span<byte> packed, Span<float> absmax)
    {
        CodecChecks.FourBit(input.Length, blockSize, packed.Length, absmax.Length);
        CodeBook book = CodeBook.ForFourBit(type);
        fixed (ushort* x = input) fixed (byte* p = packed) fixed (float* a = absmax)
        {
            nint xs = (nint)x, ps = (nint)p, ab = (nint)a;
            int n = input.Length;
            ForEachChunk(n, blockSize, (start, end) => WithWidened(start, end, buffer =>
            {
                ushort* source = (ushort*)xs;
                for (int i = 0; i < end - start; i++) buffer[i] = FloatBits.BFloat16ToSingle(source[start + i]);
            }, shifted => SimdFourBitEncoder.Encode(shifted, n, book, blockSize, start, end, (byte*)ps, (float*)ab)));
        }
    }

    /// <inheritdoc/>
    public void QuantizeFourBit(ReadOnlySpan<Half> input, FourBitType type, int blockSize, Span<byte> packed, Span<float> absmax)
    {
        CodecChecks.FourBit(input.Length, blockSize, packed.Length, absmax.Length);
        CodeBook book = CodeBook.ForFourBit(type);
        fixed (Half* x = input) fixed (byte* p = packed) fixed (float* a = absmax)
        {
            nint xs = (nint)x, ps = (nint)p, ab = (nint)a;
            int n = input.Length;
            ForEachChunk(n, blockSize, (start, end) => WithWidened(start, end,
                buffer => TensorPrimitives.ConvertToSingle(new ReadOnlySpan<Half>((Half*)xs + start, end - start), buffer),
                shifted => SimdFourBitEncoder.Encode(shifted, n, book, blockSize, start, end, (byte*)ps, (float*)ab)));
        }
    }

    /// <inheritdoc/>
    public void DequantizeFourBit(ReadOnlySpan<byte> packed, ReadOnlySpan<float> absmax, FourBitType type, int blockSize, Span<float> output)
    {
        CodecChecks.FourBit(output.Length, blockSize, packed.Length, absmax.Length);
        fixed (byte* p = packed) fixed (float* a = absmax) fixed (float* t = CodeBook.ForFourBit(type).Values) fixed (float* o = output)
        {
            nint ps = (nint)p, ab = (nint)a, ts = (nint)t, os = (nint)o;
            bool stream = Streams(os, output.Length * 4L);
            ForEachChunk(output.Length, blockSize, (start, end) =>
                SimdFourBitDecoder.ToSingle((byte*)ps, (float*)ab, (float*)ts, blockSize, start, end, (float*)os, stream));
        }
    }

    /// <inheritdoc/>
    public void DequantizeFourBit(ReadOnlySpan<byte> packed, ReadOnlySpan<float> absmax, FourBitType type, int blockSize, Span<ushort> output)
    {
        CodecChecks.FourBit(output.Length, blockSize, packed.Length, absmax.Length);
        fixed (byte* p = packed) fixed (float* a = absmax) fixed (float* t = CodeBook.ForFourBit(type).Values) fixed (ushort* o = output)
        {
            nint ps = (nint)p, ab = (nint)a, ts = (nint)t, os = (nint)o;
            bool stream = Streams(os, output.Length * 2L);
            ForEachChunk(output.Length, blockSize, (start, end) =>
                SimdFourBitDecoder.ToBFloat16((byte*)ps, (float*)ab, (float*)ts, blockSize, start, end, (ushort*)os, stream));
        }
    }

    /// <inheritdoc/>
    public void DequantizeFourBit(ReadOnlySpan<byte> packed, ReadOnlySpan<float> absmax, FourBitType type, int blockSize, Span<Half> output)
    {
        CodecChecks.FourBit(output.Length, blockSize, packed.Length, absmax.Length);
        fixed (byte* p = packed) fixed (float* a = absmax) fixed (float* t = CodeBook.ForFourBit(type).Values) fixed (Half* o = output)
        {
            nint ps = (nint)p, ab = (nint)a, ts = (nint)t, os = (nint)o;
            ForEachChunk(output.Length, blockSize, (start, end) =>
                SimdFourBitDecoder.ToHalf((byte*)ps, (float*)ab, (float*)ts, blockSize, start, end, (Half*)os));
        }
    }

    /// <inheritdoc/>
    public void QuantizeDynamic(ReadOnlySpan<float> input, DynamicMap map, int blockSize, Span<byte> codes, Span<float> absmax)
    {
        CodecChecks.Dynamic(input.Length, blockSize, codes.Length, absmax.Length);
        fixed (float* x = input) fixed (byte* c = codes) fixed (float* a = absmax)
        {
            nint xs = (nint)x, cs = (nint)c, ab = (nint)a;
            ForEachChunk(input.Length, blockSize, (start, end) =>
                SimdDynamicCodec.Encode((float*)xs, map, blockSize, start, end, (byte*)cs, (float*)ab));
        }
    }

    /// <inheritdoc/>
    public void DequantizeDynamic(ReadOnlySpan<byte> codes, ReadOnlySpan<float> absmax, DynamicMap map, int blockSize, Span<float> output)
    {
        CodecChecks.Dynamic(output.Length, blockSize, codes.Length, absmax.Length);
        fixed (byte* c = codes) fixed (float* a = absmax) fixed (float* t = map.Book().Values) fixed (float* o = output)
        {
            nint cs = (nint)c, ab = (nint)a, ts = (nint)t, os = (nint)o;
            ForEachChunk(output.Length, blockSize, (start, end) =>
                SimdDynamicCodec.Decode((byte*)cs, (float*)ab, (float*)ts, blockSize, start, end, (float*)os));
        }
    }

    private bool Streams(nint output, long bytes) =>
        System.Runtime.Intrinsics.X86.Avx512BW.IsSupported && _parallel.MaxDegreeOfParallelism > 1
        && (output & 63) == 0 && bytes >= _streamingThreshold;

    private void ForEachChunk(int count, int blockSize, Action<int, int> body)
    {
        int blocks = BlockSizes.BlockCount(count, blockSize);
        int blocksPerChunk = Math.Max(1, ChunkElements / blockSize);
        int chunks = (blocks + blocksPerChunk - 1) / blocksPerChunk;
        if (chunks <= 1 || _parallel.MaxDegreeOfParallelism == 1)
        {
            for (int chunk = 0; chunk < chunks; chunk++) Run(chunk);
            return;
        }
        Parallel.For(0, chunks, _parallel, Run);

        void Run(int chunk)
        {
            int start = chunk * blocksPerChunk * blockSize;
            body(start, (int)Math.Min((long)start + (long)blocksPerChunk * blockSize, count));
        }
    }

    // Widens a chunk of 16-bit input into a pooled float32 buffer, then hands the encoder a pointer offset so that
    // absolute element indices (and error messages) stay those of the whole tensor.
    private static void WithWidened(int start, int end, SpanAction fill, PointerAction encode)
    {
        float[] buffer = ArrayPool<float>.Shared.Rent(end - start);
        try
        {
            fill(buffer.AsSpan(0, end - start));
            fixed (float* b = buffer) encode(b - start);
        }
        finally
        {
            ArrayPool<float>.Shared.Return(buffer);
        }
    }

    private delegate void SpanAction(Span<float> buffer);

    private delegate void PointerAction(float* shifted);
}
