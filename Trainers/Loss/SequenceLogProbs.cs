using static TorchSharp.torch;

namespace QuantPeft.Trainers.Loss;

/// <summary>
/// Per-row log-likelihood of the labelled tokens, <c>Σ_t log softmax(h_t·Wᵀ)[label_t]</c> over the positions whose
/// label is not −100: log π(answer | prompt) when only the answer is labelled. Each row goes through
/// <see cref="ChunkedCrossEntropy"/> (sum, not mean), so the full (tokens × vocab) logits are never materialised and
/// the gradient is that loss's exact chunked backward.
/// </summary>
public static class SequenceLogProbs
{
    /// <summary>The (R) float32 sums of log-probabilities of each row's labelled tokens. Differentiable.</summary>
    /// <param name="hidden">(R, T, H) hidden states.</param>
    /// <param name="weight">(V, H) LM head weight.</param>
    /// <param name="labels">(R, T) int64 pre-shifted labels, −100 where not scored.</param>
    /// <param name="finalLogitSoftcap">The model's final-logit soft-cap (Gemma 2), applied as in training; null for none.</param>
    public static Tensor Sum(Tensor hidden, Tensor weight, Tensor labels, double? finalLogitSoftcap = null)
    {
        long rows = hidden.shape[0];
        if (labels.shape[0] != rows) throw new ArgumentException($"labels hold {labels.shape[0]} rows, hidden states {rows}", nameof(labels));
        using var scope = NewDisposeScope();
        var sums = new Tensor[rows];
        for (long r = 0; r < rows; r++)
            sums[r] = ChunkedCrossEntropy.Compute(hidden[r], weight, labels[r], divisor: 1, finalLogitSoftcap: finalLogitSoftcap).reshape(1).neg();
        return cat(sums, 0).MoveToOuterDisposeScope();
    }
}
