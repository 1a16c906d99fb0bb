using System.Numerics;
using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Model;

/// <summary>
/// A counter-based generator of approximately normal values: element <c>i</c> of a stream is a pure function of
/// the stream's seed and <c>i</c>, so any slice of a tensor can be generated on its own, in any order, on any
/// number of threads, with the same result. It is what makes <see cref="SyntheticTensorSource"/> fast enough to
/// stand in for a 7B or 70B checkpoint (torch's <c>randn</c> is sequential per generator and ran at a few M
/// values/s here).
/// </summary>
/// <remarks>
/// <para>Element <c>i</c> takes 64 bits <c>h = SplitMix64(seed + (i + 1)·φ)</c> (φ = 0x9E3779B97F4A7C15, the
/// SplitMix64 output for position <c>i</c> of a stream started at <c>seed</c>), splits them into four 16-bit
/// integers and sums them: <c>S</c> is the sum of four independent uniforms on 0..65535 (a discrete
/// Irwin–Hall(4) variable). The value is <c>(S − 131070) · σ / √(4·(65536² − 1)/12)</c> in float32, rounded to
/// the target dtype (bf16: to nearest even).</para>
/// <para>The distribution is therefore <b>not exactly normal</b>: the mean is 0 and the variance is σ² (up to
/// the final rounding), but it is bounded at ±2√3·σ ≈ ±3.46σ, its excess kurtosis is −0.3, and
/// P(|x| &gt; 2σ) = 4.25 % instead of the normal's 4.55 %. For synthetic benchmark weights (activations and loss of
/// the right scale, quantizer statistics of the right kind) that is enough, and every operation is exact integer
/// or single IEEE float arithmetic, so the scalar and vector paths give bit-identical values on every CPU.</para>
/// </remarks>
public static class CounterNormal
{
    private const ulong Golden = 0x9E3779B97F4A7C15UL;
    private const ulong Mix1 = 0xBF58476D1CE4E5B9UL;
    private const ulong Mix2 = 0x94D049BB133111EBUL;
    private const int SumMean = 2 * 65535;

    // Elements per parallel task: large enough that scheduling costs nothing next to the work.
    private const int ChunkElements = 1 << 20;

    /// <summary>The standard deviation of <c>S</c> (sum of four uniforms on 0..65535).</summary>
    private static readonly double SumStd = Math.Sqrt(4.0 * (65536.0 * 65536.0 - 1.0) / 12.0);

    /// <summary>The float32 factor that maps <c>S − 131070</c> to a value of standard deviation <paramref name="std"/>.</summary>
    private static float Scale(double std) => (float)(std / SumStd);

    /// <summary>Element <paramref name="index"/> of stream <paramref name="seed"/> with standard deviation <paramref name="std"/>, in float32.</summary>
    public static float Value(ulong seed, long index, double std) => Centred(Hash(seed, index)) * Scale(std);

    /// <summary>
    /// Writes elements <c>[firstIndex, firstIndex + destination.Length)</c> of stream <paramref name="seed"/> as
    /// float32, vectorised, on the calling thread.
    /// </summary>
    public static void Fill(ulong seed, long firstIndex, double std, Span<float> destination)
    {
        float scale = Scale(std);
        int i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            int width = Vector<float>.Count;
            for (; i + width <= destination.Length; i += width)
                Values(seed, firstIndex + i, scale).CopyTo(destination.Slice(i, width));
        }
        for (; i < destination.Length; i++) destination[i] = Centred(Hash(seed, firstIndex + i)) * scale;
    }

    /// <summary>
    /// Writes elements <c>[firstIndex, firstIndex + destination.Length)</c> of stream <paramref name="seed"/> as
    /// bfloat16 bits (float32 value rounded to nearest even), vectorised, on the calling thread.
    /// </summary>
    public static void FillBFloat16(ulong seed, long firstIndex, double std, Span<ushort> destination)
    {
        float scale = Scale(std);
        int i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            int width = Vector<ushort>.Count;
            for (; i + width <= destination.Length; i += width)
            {
                var low = ToBFloat16Bits(Values(seed, firstIndex + i, scale));
                var high = ToBFloat16Bits(Values(seed, firstIndex + i + width / 2, scale));
                Vector.Narrow(low, high).CopyTo(destination.Slice(i, width));
            }
        }
        for (; i < destination.Length; i++)
            destination[i] = Quant.Codecs.FloatBits.SingleToBFloat16(Centred(Hash(seed, firstIndex + i)) * scale);
    }

    /// <summary>
    /// Fills a contiguous CPU tensor in place with stream <paramref name="seed"/> (element <c>i</c> of the flattened
    /// tensor is element <c>i</c> of the stream), in parallel over chunks. bf16 and float32 are written directly;
    /// other floating dtypes go through a float32 copy.
    /// </summary>
    /// <exception cref="ArgumentException">The tensor is not a contiguous CPU tensor, or its dtype is not floating point.</exception>
    public static void Fill(Tensor tensor, ulong seed, double std)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        if (tensor.device.type != DeviceType.CPU || !tensor.is_contiguous())
            throw new ArgumentException("expected a contiguous CPU tensor", nameof(tensor));
        switch (tensor.dtype)
        {
            case ScalarType.BFloat16:
                FillParallel(tensor, (first, bytes) => FillBFloat16(seed, first, std, MemoryMarshal.Cast<byte, ushort>(bytes)), 2);
                break;
            case ScalarType.Float32:
                FillParallel(tensor, (first, bytes) => Fill(seed, first, std, MemoryMarshal.Cast<byte, float>(bytes)), 4);
                break;
            case ScalarType.Float16 or ScalarType.Float64:
                using (var single = empty(tensor.shape, ScalarType.Float32))
                {
                    Fill(single, seed, std);
                    tensor.copy_(single);
                }
                break;
            default:
                throw new ArgumentException($"expected a floating-point tensor, found {tensor.dtype}", nameof(tensor));
        }
    }

    private delegate void ChunkFill(long firstIndex, Span<byte> bytes);

    // Tensor.bytes is a span over the tensor's own memory (no copy), limited to 2 GiB, so a larger tensor is filled
    // through views of at most SliceElements; a span cannot be captured by the parallel body, so each task rebuilds
    // its own from the slice's address.
    private static unsafe void FillParallel(Tensor tensor, ChunkFill fill, int elementSize)
    {
        long count = tensor.numel();
        long sliceElements = (int.MaxValue / elementSize) / ChunkElements * ChunkElements;
        using var flat = tensor.view(-1);
        for (long start = 0; start < count; start += sliceElements)
        {
            long sliceCount = Math.Min(sliceElements, count - start);
            using var slice = flat.narrow(0, start, sliceCount);
            long chunks = (sliceCount + ChunkElements - 1) / ChunkElements;
            fixed (byte* pointer = slice.bytes)
            {
                nint address = (nint)pointer;
                long sliceStart = start;
                Parallel.For(0, chunks, chunk =>
                {
                    long first = chunk * ChunkElements;
                    int length = (int)Math.Min(ChunkElements, sliceCount - first);
                    fill(sliceStart + first, new Span<byte>((byte*)address + first * elementSize, length * elementSize));
                });
            }
        }
    }

    // Vector<float>.Count consecutive values starting at index `first`, as float32.
    private static Vector<float> Values(ulong seed, long first, float scale)
    {
        int lanes = Vector<ulong>.Count;
        var low = Sums(seed, first);
        var high = Sums(seed, first + lanes);
        var centred = Vector.AsVectorInt32(Vector.Narrow(low, high)) - new Vector<int>(SumMean);
        return Vector.ConvertToSingle(centred) * new Vector<float>(scale);
    }

    // Sums of the four 16-bit fields of the hashes of Vector<ulong>.Count consecutive indices.
    private static Vector<ulong> Sums(ulong seed, long first)
    {
        var counters = new Vector<ulong>((ulong)(first + 1)) + Vector<ulong>.Indices;
        var z = new Vector<ulong>(seed) + counters * new Vector<ulong>(Golden);
        z = (z ^ Vector.ShiftRightLogical(z, 30)) * new Vector<ulong>(Mix1);
        z = (z ^ Vector.ShiftRightLogical(z, 27)) * new Vector<ulong>(Mix2);
        z ^= Vector.ShiftRightLogical(z, 31);
        // Two adds of 16-bit fields side by side in 32-bit halves, then the halves: no lane overflows.
        var fields = new Vector<ulong>(0x0000FFFF0000FFFFUL);
        var pairs = (z & fields) + (Vector.ShiftRightLogical(z, 16) & fields);
        return (pairs & new Vector<ulong>(0xFFFFFFFFUL)) + Vector.ShiftRightLogical(pairs, 32);
    }

    // Round to nearest even on the float32 bits; the values are finite, so no NaN case is needed.
    private static Vector<uint> ToBFloat16Bits(Vector<float> values)
    {
        var bits = Vector.AsVectorUInt32(values);
        var odd = Vector.ShiftRightLogical(bits, 16) & Vector<uint>.One;
        return Vector.ShiftRightLogical(bits + new Vector<uint>(0x7FFFu) + odd, 16);
    }

    private static ulong Hash(ulong seed, long index)
    {
        ulong z = seed + (ulong)(index + 1) * Golden;
        z = (z ^ (z >> 30)) * Mix1;
        z = (z ^ (z >> 27)) * Mix2;
        return z ^ (z >> 31);
    }

    private static float Centred(ulong h)
    {
        int sum = (int)(h & 0xFFFF) + (int)((h >> 16) & 0xFFFF) + (int)((h >> 32) & 0xFFFF) + (int)(h >> 48);
        return sum - SumMean;
    }
}
