using QuantPeft.Formats;
using TorchSharp;
using static TorchSharp.torch;
using QuantPeft.Quant.Torch;

namespace QuantPeft.Trainers.Loss;

/// <summary>
/// Causal-LM cross-entropy that never materialises the full (tokens × vocab) float32 logits. The LM
/// head projection, log-softmax and NLL run over chunks of rows in forward and again in backward,
/// so the peak is chunk × V floats instead of B·T·V (at vocab 128,256 and 8k tokens that is the
/// difference between 0.5 GB and 4 GB, before the gradient of the logits doubles it).
/// </summary>
/// <remarks>
/// Matches <c>cross_entropy(linear(hidden, weight).float(), labels, ignore_index)</c>: the projection is
/// done in the hidden states' dtype and upcast to float32, like Hugging Face's loss; the weight
/// gradient is accumulated across chunks in float32.
/// </remarks>
public static class ChunkedCrossEntropy
{
    /// <summary>The label value that excludes a position from the loss (prompt tokens, padding).</summary>
    public const long IgnoreIndex = -100;

    /// <summary>Default rows per chunk.</summary>
    public const int DefaultChunkSize = 1024;

    /// <summary>
    /// Mean (or sum / <paramref name="divisor"/>) of −log softmax(hidden·Wᵀ)[label] over the positions
    /// whose label is not <paramref name="ignoreIndex"/>. Differentiable w.r.t. hidden and weight.
    /// </summary>
    /// <param name="hidden">(…, H) hidden states, e.g. (B, T, H) from <see cref="Model.CausalLm.Hidden(TorchSharp.torch.Tensor)"/>.</param>
    /// <param name="weight">(V, H) LM head weight.</param>
    /// <param name="labels">(…) int64 targets aligned with <paramref name="hidden"/> (already shifted; see <see cref="ShiftLabels"/>).</param>
    /// <param name="chunkSize">Rows per chunk.</param>
    /// <param name="ignoreIndex">Label value to skip.</param>
    /// <param name="divisor">
    /// Divide the summed loss by this instead of by the number of counted positions; gradient accumulation
    /// passes the token count of the whole accumulated batch here. Null: the mean over this call's positions.
    /// </param>
    /// <param name="finalLogitSoftcap">
    /// Gemma 2's <c>final_logit_softcapping</c>: each logit becomes tanh(z / cap) · cap (in the hidden states' dtype) before
    /// the softmax; null for none.
    /// </param>
    /// <returns>A float32 scalar. Zero when every position is ignored (instead of the NaN a plain mean gives).</returns>
    /// <exception cref="QuantPeftException">A label outside [0, V) that is not the ignore index.</exception>
    public static Tensor Compute(Tensor hidden, Tensor weight, Tensor labels, int chunkSize = DefaultChunkSize,
        long ignoreIndex = IgnoreIndex, double? divisor = null, double? finalLogitSoftcap = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(chunkSize, 1);
        long h = weight.shape[1], vocab = weight.shape[0];
        if (hidden.shape[^1] != h)
            throw new ArgumentException($"hidden width {hidden.shape[^1]} differs from the LM head's {h}", nameof(hidden));
        using var scope = NewDisposeScope();
        var flatHidden = hidden.reshape(-1, h);                       // (N, H), a view for contiguous input
        var flatLabels = labels.reshape(-1).to_type(ScalarType.Int64);
        if (flatLabels.shape[0] != flatHidden.shape[0])
            throw new ArgumentException($"labels hold {flatLabels.shape[0]} positions, hidden states {flatHidden.shape[0]}", nameof(labels));

        var counted = flatLabels.Ne(ignoreIndex);
        var outOfRange = counted.logical_and(flatLabels.Lt(0).logical_or(flatLabels.Ge(vocab)));
        if (outOfRange.any().item<bool>())
        {
            long bad = flatLabels.masked_select(outOfRange)[0].item<long>();
            throw new QuantPeftException($"labels: expected token ids in [0, {vocab}) or {ignoreIndex}; found {bad}");
        }
        double count = counted.sum().item<long>();
        double denominator = divisor ?? count;
        if (denominator <= 0)
            denominator = 1;   // nothing counted: the summed loss is 0, keep it 0 rather than 0/0
        var loss = ChunkedCrossEntropyFunction.apply(flatHidden, weight, flatLabels, chunkSize, ignoreIndex, denominator,
            finalLogitSoftcap is > 0 ? finalLogitSoftcap.Value : 0.0);
        return loss.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Aligns causal-LM labels with the hidden state that predicts them: position t is scored against
    /// the token at t+1, and the last position against nothing. (B, T) → (B, T), padded with <paramref name="ignoreIndex"/>.
    /// </summary>
    public static Tensor ShiftLabels(Tensor labels, long ignoreIndex = IgnoreIndex)
    {
        using var scope = NewDisposeScope();
        long t = labels.shape[^1];
        var next = labels.narrow(-1, 1, t - 1);
        var pad = ScalarOps.FullLike(labels.narrow(-1, 0, 1), ignoreIndex);
        return cat([next, pad], dim: -1).MoveToOuterDisposeScope();
    }
}
