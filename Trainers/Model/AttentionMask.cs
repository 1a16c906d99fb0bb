using static TorchSharp.torch;

namespace QuantPeft.Trainers.Model;

/// <summary>
/// Which keys each query may attend to. Every term of the mask is built here and the terms are
/// combined with AND, so a further term (for example "same packed segment") composes with the
/// existing ones by adding one more factor in <see cref="Allowed"/>.
/// </summary>
/// <remarks>
/// The window follows transformers' sliding-window overlay: query i sees key j when
/// 0 ≤ i − j &lt; window, so each query sees exactly <c>window</c> keys, itself included. When no term
/// but causality restricts anything, <see cref="NeedsExplicitMask"/> is false and callers use the
/// kernel's built-in causal flag instead of materialising a (T, T) mask.
/// </remarks>
public static class AttentionMask
{
    /// <summary>Whether a sequence of <paramref name="seqLen"/> tokens needs more than plain causal masking.</summary>
    public static bool NeedsExplicitMask(long seqLen, int? window) => window is { } w && seqLen > w;

    /// <summary>
    /// (T, T) bool, true where query i may attend key j: causal (j ≤ i) AND, with a window, within it (i − j &lt; window).
    /// </summary>
    public static Tensor Allowed(long seqLen, int? window, Device device)
    {
        using var scope = NewDisposeScope();
        using var all = ones(seqLen, seqLen, dtype: ScalarType.Bool, device: device);
        var allowed = all.tril(0);                                 // causal: j ≤ i
        if (window is { } w && seqLen > w)
        {
            using var tooFar = all.tril(-w);                       // i − j ≥ w
            allowed = allowed.logical_and(tooFar.logical_not());
        }
        return allowed.MoveToOuterDisposeScope();
    }
}
