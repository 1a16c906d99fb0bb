using TorchSharp;
using static TorchSharp.torch;
using QuantPeft.Quant.Torch;

namespace QuantPeft.Quant.LqLora;

/// <summary>
/// An LQ-LoRA decomposition in the form a checkpoint stores it: the low-rank factors rounded to bfloat16 and
/// Q re-quantized against those rounded factors, so that <c>Dequantize(Q) + L1·L2</c> read back from disk is
/// exactly what <see cref="Error"/> measures. Owns its tensors.
/// </summary>
public sealed class LqStoredDecomposition : IDisposable
{
    private LqStoredDecomposition(LqCodes quantized, Tensor l1, Tensor l2, double error, int iterations)
    {
        Quantized = quantized;
        L1 = l1.DetachFromDisposeScope();
        L2 = l2.DetachFromDisposeScope();
        Error = error;
        Iterations = iterations;
    }

    /// <summary>Q in stored form.</summary>
    public LqCodes Quantized { get; }

    /// <summary>L1 = U√S, (m, r), bfloat16.</summary>
    public Tensor L1 { get; }

    /// <summary>L2 = √S Vᵀ, (r, n), bfloat16.</summary>
    public Tensor L2 { get; }

    /// <summary>‖W − Dequantize(Q) − L1·L2‖_F computed in float64 from the stored values.</summary>
    public double Error { get; }

    /// <summary>Rounds of the iterative decomposition that ran.</summary>
    public int Iterations { get; }

    /// <summary>
    /// Runs <see cref="LqDecomposition.Decompose"/>, rounds L1 and L2 to bfloat16, quantizes
    /// <c>W − L1·L2</c> once more with the rounded factors and measures the error of the result.
    /// Deterministic for a given seed, device and thread count.
    /// </summary>
    /// <exception cref="QuantInputException">Bad shapes, rank, or a size the configuration cannot block.</exception>
    public static LqStoredDecomposition Create(Tensor weight, LqQuantConfig config, int rank, int maxIterations, ulong seed, string name)
    {
        using var scope = torch.NewDisposeScope();
        var w = weight.to(ScalarType.Float32);
        using var lq = LqDecomposition.Decompose(w, config, rank, maxIterations, fisher: null, seed, name);
        var l1 = lq.L1.to(ScalarType.BFloat16);
        var l2 = lq.L2.to(ScalarType.BFloat16);
        var residual = w - l1.to(ScalarType.Float32).matmul(l2.to(ScalarType.Float32));
        var quantized = LqQuantizer.Quantize(residual, config, name);
        var diff = residual - quantized.Dequantize();
        double error = Math.Sqrt(diff.to(ScalarType.Float64).Square().sum().item<double>());
        return new LqStoredDecomposition(quantized, l1, l2, error, lq.Errors.Count);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        Quantized.Dispose();
        L1.Dispose();
        L2.Dispose();
    }
}
