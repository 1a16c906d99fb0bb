using QuantPeft.Formats.HuggingFace;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Model;

/// <summary>
/// What one block's attention does beyond plain causal softmax(q·kᵀ/√D)·v: a sliding window, a different
/// score scale, soft-capped scores, and per-head q/k RMSNorms. Derived from the <see cref="ModelSpec"/> for one layer.
/// </summary>
/// <param name="Window">Keys each query sees (itself included), or null for full causal attention.</param>
/// <param name="Scale">Multiplier of q·kᵀ before the softmax.</param>
/// <param name="Softcap">Scores become tanh(s / cap) · cap when set (Gemma 2).</param>
/// <param name="QkNorm">Whether q and k pass through per-head RMSNorms (<c>q_norm</c>, <c>k_norm</c>) before RoPE.</param>
/// <param name="UnitOffsetNorm">Whether those norms scale by (1 + weight), as Gemma's do.</param>
/// <param name="NormEps">Epsilon of the q/k norms.</param>
public sealed record LayerAttention(int? Window, double Scale, double? Softcap, bool QkNorm, bool UnitOffsetNorm, double NormEps)
{
    /// <summary>Layer <paramref name="layer"/> of <paramref name="spec"/>.</summary>
    public static LayerAttention Of(ModelSpec spec, int layer) =>
        new(spec.WindowOf(layer), spec.AttentionScale, spec.AttnLogitSoftcap, spec.QkNorm, spec.GemmaStyle, spec.RmsNormEps);

    /// <summary>Plain causal attention with the 1/√D scale and no norms.</summary>
    public static LayerAttention Plain(long headDim) => new(null, 1.0 / Math.Sqrt(headDim), null, false, false, 1e-6);
}
