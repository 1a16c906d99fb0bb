using TorchSharp;
using static TorchSharp.torch;

namespace QuantPeft.Quant.Torch;

public sealed partial class QuantizedTensor
{
    /// <summary>Dequantizes to a new <c>[out, in]</c> tensor of <paramref name="dtype"/> (default: the original dtype).</summary>
    /// <param name="dtype">bf16, f16 or f32.</param>
    /// <param name="chunkRows">Rows decoded per pass; bounds the temporaries (see remarks).</param>
    /// <remarks>
    /// Each value is <c>table[code] · scale</c> computed in float32 and rounded once to <paramref name="dtype"/>,
    /// so the result does not depend on <paramref name="chunkRows"/>.
    /// <para>Memory: besides the result (<c>out · in · sizeof(dtype)</c>) the call holds the float32 block scales
    /// (<c>4 · blocks</c> bytes, plus as much again while undoing double quantization) and, per chunk of
    /// <c>c = chunkRows · in</c> elements rounded up to a whole block, an int32 index per packed byte
    /// (<c>2c</c> bytes) and the float32 values (<c>4c</c> bytes): at most <c>6 · (chunkRows · in + blockSize)</c>
    /// bytes of chunk temporaries, freed before the next chunk.</para>
    /// </remarks>
    /// <exception cref="QuantInputException"><paramref name="dtype"/> is not a float type, or <paramref name="chunkRows"/> &lt; 1.</exception>
    public Tensor Dequantize(ScalarType? dtype = null, long chunkRows = DefaultChunkRows)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var outType = dtype ?? DType;
        CheckFloat(outType, "dtype");
        using var scope = torch.NewDisposeScope();
        var result = torch.empty(_shape, outType, Device);
        DecodeInto(result, chunkRows);
        return result.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Dequantizes into <paramref name="destination"/>, a contiguous <c>[out, in]</c> float tensor on
    /// <see cref="Device"/>; same values and memory bound as <see cref="Dequantize"/>, without allocating the result.
    /// </summary>
    /// <exception cref="QuantInputException">The destination has the wrong shape, dtype, device or layout.</exception>
    public void DequantizeInto(Tensor destination, long chunkRows = DefaultChunkRows)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        CheckFloat(destination.dtype, "destination");
        if (!destination.shape.SequenceEqual(_shape) || !destination.is_contiguous() ||
            destination.device.type != Device.type || destination.device.index != Device.index)
            throw new QuantInputException(
                $"'destination': expected a contiguous [{string.Join(", ", _shape)}] tensor on {Device}, got " +
                $"[{string.Join(", ", destination.shape)}] on {destination.device} (contiguous: {destination.is_contiguous()}).");
        DecodeInto(destination, chunkRows);
    }

    private void DecodeInto(Tensor destination, long chunkRows)
    {
        if (chunkRows < 1)
            throw new QuantInputException($"'chunkRows': must be at least 1, got {chunkRows}.");
        using var scope = torch.NewDisposeScope();
        long n = NumElements;
        var scales = DequantizeAbsMax();
        var pairs = PairTable();
        var packedFlat = Packed.view(-1);
        var outFlat = destination.view(-1);
        // Chunks start on block boundaries (blocks are even-sized, so also on byte boundaries).
        long chunk = Math.Max(1, (Math.Min(chunkRows, Rows) * Columns + BlockSize - 1) / BlockSize) * BlockSize;
        for (long start = 0; start < n; start += chunk)
        {
            using var inner = torch.NewDisposeScope();
            long count = Math.Min(chunk, n - start);
            var index = packedFlat.narrow(0, start / 2, (count + 1) / 2).to(ScalarType.Int32);
            var values = pairs.index_select(0, index).view(-1);
            long fullBlocks = count / BlockSize;
            long firstBlock = start / BlockSize;
            if (fullBlocks > 0)
                values.narrow(0, 0, fullBlocks * BlockSize).view(fullBlocks, BlockSize)
                    .mul_(scales.narrow(0, firstBlock, fullBlocks).unsqueeze(1));
            long rest = count - fullBlocks * BlockSize;
            if (rest > 0)
                values.narrow(0, fullBlocks * BlockSize, rest).mul_(scales.narrow(0, firstBlock + fullBlocks, 1));
            outFlat.narrow(0, start, count).copy_(values.narrow(0, 0, count));
        }
    }

    private static void CheckFloat(ScalarType type, string what)
    {
        if (type is not (ScalarType.BFloat16 or ScalarType.Float16 or ScalarType.Float32))
            throw new QuantInputException($"'{what}': dequantization produces bfloat16, float16 or float32, got {type}.");
    }
}
