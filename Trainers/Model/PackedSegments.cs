using QuantPeft.Quant.Torch;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Model;

/// <summary>
/// The examples packed side by side in each row of a batch: per position, which example it belongs to and its position
/// inside that example. <see cref="CausalLm.Hidden(Tensor, PackedSegments?)"/> rotates with these position ids and attends
/// only within a segment, so every example is computed as if it had a row of its own. It owns its tensors, including the
/// attention masks it builds (one per sliding window, shared by every block that has that window).
/// </summary>
/// <remarks>
/// The mask handed to the fused kernel is additive (0 where allowed, −∞ elsewhere) in the compute dtype: libtorch would
/// otherwise convert a bool mask to exactly that in every block and keep each block's copy for backward; one shared
/// tensor is kept once (priced by the planner as B·T²·dtype bytes per distinct window).
/// </remarks>
public sealed class PackedSegments : IDisposable
{
    private readonly Dictionary<(int Window, ScalarType DType), Tensor> _masks = [];

    private PackedSegments(Tensor segmentIds, Tensor positionIds)
    {
        SegmentIds = segmentIds;
        PositionIds = positionIds;
    }

    /// <summary>(B, T) int64 segment ids: equal ids may attend to each other (causally).</summary>
    public Tensor SegmentIds { get; }

    /// <summary>(B, T) int64 position ids, restarting at 0 in every segment.</summary>
    public Tensor PositionIds { get; }

    /// <summary>Makes the tensors of a batch of <paramref name="batch"/> rows of <paramref name="seqLen"/> positions, row-major.</summary>
    public static PackedSegments FromIds(long[] segmentIds, long[] positionIds, long batch, long seqLen, Device device)
    {
        var segments = tensor(segmentIds, [batch, seqLen], ScalarType.Int64).to(device).DetachFromDisposeScope();
        var positions = tensor(positionIds, [batch, seqLen], ScalarType.Int64).to(device).DetachFromDisposeScope();
        return new PackedSegments(segments, positions);
    }

    /// <summary>(B, 1, T, T) additive mask in <paramref name="dtype"/>: 0 where <see cref="AttentionMask.Allowed(long, long, int?, Device, Tensor?)"/> allows, −∞ elsewhere.</summary>
    public Tensor AdditiveMask(int? window, ScalarType dtype)
    {
        var key = (window ?? 0, dtype);
        if (_masks.TryGetValue(key, out Tensor? mask)) return mask;
        using var scope = NewDisposeScope();
        long b = SegmentIds.shape[0], t = SegmentIds.shape[1];
        using var allowed = AttentionMask.Allowed(t, t, window, SegmentIds.device, SegmentIds);   // (B, 1, T, T)
        using var blocked = allowed.logical_not();
        using var zero = zeros([b, 1, t, t], dtype, SegmentIds.device);
        mask = zero.MaskedFill(blocked, double.NegativeInfinity).DetachFromDisposeScope();
        _masks[key] = mask;
        return mask;
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        foreach (Tensor m in _masks.Values) m.Dispose();
        _masks.Clear();
        SegmentIds.Dispose();
        PositionIds.Dispose();
    }
}
