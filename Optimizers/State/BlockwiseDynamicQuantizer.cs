using System.Collections.Concurrent;
using QuantPeft.Quant;
using QuantPeft.Quant.Torch;
using static TorchSharp.torch;

namespace QuantPeft.Optimizers.State;

/// <summary>
/// Blockwise 8-bit quantization with the bitsandbytes dynamic maps, written in TorchSharp ops so it runs
/// on any device. Pure functions: the caller owns inputs and outputs.
/// </summary>
/// <remarks>
/// Per block of <c>blockSize</c> elements: absmax = max|x|, code = nearest table entry to x/absmax
/// (binary search, then the midpoint against the neighbour; a value exactly on a midpoint takes the lower
/// index), dequantized value = table[code]·absmax. An all-zero block has absmax 0 and encodes to the
/// table's zero. With <c>signFix</c> (the first moment) a code whose sign differs from x's moves one index
/// toward x's sign, as bitsandbytes' 8-bit optimizer kernel does, so a small negative m never decodes as +0.
/// </remarks>
public static class BlockwiseDynamicQuantizer
{
    private static readonly ConcurrentDictionary<(bool Signed, string Device), Tensor> Tables = new();

    /// <summary>The dynamic map as an f32 tensor on <paramref name="device"/> (cached, shared, not state).</summary>
    public static Tensor Table(bool signed, Device device) =>
        Tables.GetOrAdd((signed, device.ToString()), _ =>
        {
            var values = (signed ? CodeTables.DynamicSigned : CodeTables.DynamicUnsigned).ToArray();
            return tensor(values, ScalarType.Float32).to(device).DetachFromDisposeScope();
        });

    /// <summary>Number of blocks for <paramref name="count"/> elements.</summary>
    public static long BlockCount(long count, int blockSize) => (count + blockSize - 1) / blockSize;

    /// <summary>Quantizes the f32 tensor <paramref name="x"/>: returns (codes uint8 [numel], absmax f32 [blocks]).</summary>
    public static (Tensor Codes, Tensor AbsMax) Quantize(Tensor x, bool signed, int blockSize, bool signFix)
    {
        using var scope = NewDisposeScope();
        long n = x.numel();
        long blocks = BlockCount(n, blockSize);
        var flat = x.reshape(-1).to(ScalarType.Float32);
        var padded = nn.functional.pad(flat, [0, blocks * blockSize - n]).view(blocks, blockSize);
        var absmax = padded.abs().amax([1]);
        var safe = where(absmax.Gt(0), absmax, ones_like(absmax));
        var normalized = padded / safe.unsqueeze(1);
        var codes = Nearest(Table(signed, x.device), normalized);
        if (signFix)
        {
            var table = Table(signed, x.device);
            var chosen = table.index_select(0, codes.reshape(-1)).view(blocks, blockSize);
            var mismatch = chosen.signbit().ne(normalized.signbit());
            var step = where(normalized.signbit(), ScalarOps.FullLike(codes, -1L), ScalarOps.FullLike(codes, 1L));
            codes = where(mismatch, codes.Add(step).Clamp(0L, 255L), codes);
        }
        var packed = codes.reshape(-1).narrow(0, 0, n).to(ScalarType.Byte);
        return (packed.MoveToOuterDisposeScope(), absmax.MoveToOuterDisposeScope());
    }

    /// <summary>Dequantizes to a new f32 tensor of <paramref name="shape"/>.</summary>
    public static Tensor Dequantize(Tensor codes, Tensor absmax, bool signed, int blockSize, long[] shape)
    {
        using var scope = NewDisposeScope();
        long n = codes.numel();
        long blocks = absmax.numel();
        var values = Table(signed, codes.device).index_select(0, codes.to(ScalarType.Int64));
        var padded = nn.functional.pad(values, [0, blocks * blockSize - n]).view(blocks, blockSize);
        var result = (padded * absmax.unsqueeze(1)).reshape(-1).narrow(0, 0, n).reshape(shape).contiguous();
        return result.MoveToOuterDisposeScope();
    }

    // Index of the nearest table entry (table sorted ascending, 256 entries); ties go to the lower index.
    private static Tensor Nearest(Tensor table, Tensor x)
    {
        using var scope = NewDisposeScope();
        var upper = searchsorted(table, x.contiguous()).Clamp(1L, 255L);
        var lower = upper.Sub(1L);
        var hi = table.index_select(0, upper.reshape(-1)).view_as(x);
        var lo = table.index_select(0, lower.reshape(-1)).view_as(x);
        var midpoint = lo.Add(hi).MulInPlace(0.5);
        return where(x.gt(midpoint), upper, lower).MoveToOuterDisposeScope();
    }
}
