using QuantPeft.Quant.Torch;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantPeft.Quant.LqLora;

/// <summary>The result of <see cref="LqDecomposition.Decompose"/>: W ≈ Q + L1·L2. Owns its tensors.</summary>
public sealed class LqDecompositionResult : IDisposable
{
    internal LqDecompositionResult(Tensor quantized, Tensor l1, Tensor l2, IReadOnlyList<double> errors)
    {
        Quantized = quantized.DetachFromDisposeScope();
        L1 = l1.DetachFromDisposeScope();
        L2 = l2.DetachFromDisposeScope();
        Errors = errors;
    }

    /// <summary>Q, the dequantized values of the quantized part (float32, shape of W).</summary>
    public Tensor Quantized { get; }

    /// <summary>L1 = U√S, (m, r): the LoRA "B" side before scaling.</summary>
    public Tensor L1 { get; }

    /// <summary>L2 = √S Vᵀ, (r, n): the LoRA "A" side before scaling.</summary>
    public Tensor L2 { get; }

    /// <summary>The (weighted) Frobenius error ‖√F ⊙ (W − Q − L1L2)‖ after each iteration, in order.</summary>
    public IReadOnlyList<double> Errors { get; }

    /// <summary>The error of the returned iterate (the last entry of <see cref="Errors"/>).</summary>
    public double Error => Errors[^1];

    /// <inheritdoc />
    public void Dispose()
    {
        Quantized.Dispose();
        L1.Dispose();
        L2.Dispose();
    }
}

/// <summary>
/// LQ-LoRA's iterative decomposition W ≈ Q + L1·L2 (the LQ-LoRA paper): alternate a rank-r randomized SVD of
/// W − Q with Q = quantize(W − L1L2), starting from Q = 0, until the error stops falling.
/// </summary>
public static class LqDecomposition
{
    /// <summary>Decomposes <paramref name="weight"/> (any float dtype, computed in float32).</summary>
    /// <param name="weight">W (m, n); not modified.</param>
    /// <param name="config">The quantization configuration of Q.</param>
    /// <param name="rank">r of L1·L2.</param>
    /// <param name="maxIterations">At most this many rounds (the reference uses 100).</param>
    /// <param name="fisher">Data-aware weights, or null for the plain Frobenius error.</param>
    /// <param name="seed">Seed of the randomized SVD sketches.</param>
    /// <param name="name">The matrix name for error messages.</param>
    /// <remarks>
    /// Stop rule, as in the reference: after computing the error of round t, if it is larger than the error
    /// of round t − 1 the loop ends and round t's (slightly worse) iterate is returned. With Fisher weights the
    /// SVD runs on <c>w_r ⊙ (W − Q) ⊙ w_c</c> and the factors are unscaled (<c>L1 /= w_r</c>, <c>L2 /= w_c</c>);
    /// the quantization step itself is unweighted.
    /// </remarks>
    /// <exception cref="QuantInputException">Bad shapes, rank or iteration count.</exception>
    public static LqDecompositionResult Decompose(
        Tensor weight, LqQuantConfig config, int rank, int maxIterations = 100, FisherWeights? fisher = null,
        ulong seed = 0, string name = "weight")
    {
        if (weight.dim() != 2)
            throw new QuantInputException($"'{name}': expected a 2-D matrix, got [{string.Join(", ", weight.shape)}].");
        if (rank < 1 || rank > Math.Min(weight.shape[0], weight.shape[1]))
            throw new QuantInputException(
                $"'{name}': rank must be between 1 and {Math.Min(weight.shape[0], weight.shape[1])}, got {rank}.");
        if (maxIterations < 1)
            throw new QuantInputException($"'{name}': maxIterations must be at least 1, got {maxIterations}.");
        if (fisher is not null && !fisher.Full.shape.SequenceEqual(weight.shape))
            throw new QuantInputException(
                $"'{name}': Fisher weights have shape [{string.Join(", ", fisher.Full.shape)}], the weight [{string.Join(", ", weight.shape)}].");

        using var scope = torch.NewDisposeScope();
        var w = weight.to(ScalarType.Float32);
        var sqrtF = fisher?.Full.sqrt();
        var generator = new torch.Generator(seed);
        var q = torch.zeros_like(w).DetachFromDisposeScope();
        Tensor? l1 = null, l2 = null;
        var errors = new List<double>();
        double last = double.PositiveInfinity;
        for (int t = 0; t < maxIterations; t++)
        {
            using var round = torch.NewDisposeScope();
            var residual = w - q;
            Tensor newL1, newL2;
            if (fisher is null)
            {
                (newL1, newL2) = RandomizedSvd.Factors(residual, rank, generator: generator);
            }
            else
            {
                var (t1, t2) = RandomizedSvd.Factors(fisher.Rows * residual * fisher.Columns, rank, generator: generator);
                newL1 = t1 / fisher.Rows.ClampMin(1e-30);
                newL2 = t2 / fisher.Columns.ClampMin(1e-30);
            }
            var lowRank = newL1.matmul(newL2);
            var newQ = LqQuantizer.FakeQuantize(w - lowRank, config, name);
            var diff = w - lowRank - newQ;
            if (sqrtF is not null) diff = diff * sqrtF;
            double error = Math.Sqrt(diff.to(ScalarType.Float64).Square().sum().item<double>());
            errors.Add(error);
            // Keep only the current iterate alive: the previous one is released here, not at the end.
            q.Dispose();
            l1?.Dispose();
            l2?.Dispose();
            q = newQ.DetachFromDisposeScope();
            l1 = newL1.DetachFromDisposeScope();
            l2 = newL2.DetachFromDisposeScope();
            if (error > last) break;
            last = error;
        }
        return new LqDecompositionResult(q, l1!, l2!, errors);
    }
}
