using static TorchSharp.torch;

namespace QuantPeft.Trainers.Model;

/// <summary>
/// Which keys each query may attend to. Every term of the mask is built here and the terms are
/// combined with AND: causality, the sliding window, and for rows that pack several examples the
/// "same segment" term (<see cref="Allowed(long, long, int?, Device, Tensor?)"/>).
/// </summary>
/// <remarks>
/// The window follows transformers' sliding-window overlay: query i sees key j when
/// 0 ≤ i − j &lt; window, so each query sees exactly <c>window</c> keys, itself included. When no term
/// but causality restricts anything, <see cref="NeedsExplicitMask(long, long, int?)"/> is false and callers use the
/// kernel's built-in causal flag instead of materialising a (T, T) mask.
/// </remarks>
public static class AttentionMask
{
    /// <summary>Whether a sequence of <paramref name="seqLen"/> tokens needs more than plain causal masking.</summary>
    public static bool NeedsExplicitMask(long seqLen, int? window) => NeedsExplicitMask(seqLen, seqLen, window);

    /// <summary>
    /// Whether <paramref name="queries"/> new tokens after <paramref name="keys"/> − <paramref name="queries"/> cached
    /// ones need more than the kernel's causal flag, which assumes queries and keys start at the same position.
    /// </summary>
    public static bool NeedsExplicitMask(long queries, long keys, int? window) => keys != queries || window is { } w && keys > w;

    /// <summary>
    /// (T, T) bool, true where query i may attend key j: causal (j ≤ i) AND, with a window, within it (i − j &lt; window).
    /// </summary>
    public static Tensor Allowed(long seqLen, int? window, Device device) => Allowed(seqLen, seqLen, window, device);

    /// <summary>
    /// (T, S) bool for T queries that follow S − T cached keys (generation with a KV cache): query i sits at position
    /// p = S − T + i and may attend key j when j ≤ p AND, with a window, p − j &lt; window.
    /// </summary>
    public static Tensor Allowed(long queries, long keys, int? window, Device device) => Allowed(queries, keys, window, device, null);

    /// <summary>
    /// As <see cref="Allowed(long, long, int?, Device)"/>, AND, with <paramref name="segmentIds"/> (B, T) of rows that pack
    /// several examples, query i may attend key j only when both lie in one segment: (B, 1, T, T) bool, block-diagonal
    /// causal (the window still counts positions along the row, which within a segment is the distance inside the example).
    /// </summary>
    /// <exception cref="ArgumentException">Segments are given with cached keys (a packed row is never generated from).</exception>
    public static Tensor Allowed(long queries, long keys, int? window, Device device, Tensor? segmentIds)
    {
        if (segmentIds is not null && queries != keys)
            throw new ArgumentException($"segment ids need as many keys as queries; found {queries} queries and {keys} keys", nameof(segmentIds));
        using var scope = NewDisposeScope();
        long offset = keys - queries;
        using var all = ones(queries, keys, dtype: ScalarType.Bool, device: device);
        var allowed = all.tril(offset);                            // causal: j ≤ p
        if (window is { } w && keys > w)
        {
            using var tooFar = all.tril(offset - w);               // p − j ≥ w
            allowed = allowed.logical_and(tooFar.logical_not());
        }
        if (segmentIds is not null)
        {
            var same = segmentIds.unsqueeze(2).eq(segmentIds.unsqueeze(1));   // (B, T, T): same segment
            allowed = allowed.logical_and(same).unsqueeze(1);                   // (B, 1, T, T)
        }
        return allowed.MoveToOuterDisposeScope();
    }
}
