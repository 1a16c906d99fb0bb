using TorchSharp;
using static TorchSharp.torch;

namespace QuantPeft.Quant.LqLora;

/// <summary>
/// Rank-r factors of a matrix from a randomized SVD (Halko et al.): a Gaussian sketch of r + oversampling
/// columns, a few power iterations re-orthonormalised with QR, then the exact SVD of the small projection.
/// </summary>
public static class RandomizedSvd
{
    /// <summary>
    /// Returns <c>L1 = U_r √S_r</c> (m, r) and <c>L2 = √S_r V_rᵀ</c> (r, n) with <c>L1 L2 ≈ A</c>; float32, on A's device.
    /// </summary>
    /// <param name="matrix">A, float32 (m, n); not modified.</param>
    /// <param name="rank">r, 1 ≤ r ≤ min(m, n).</param>
    /// <param name="oversampling">Extra sketch columns (LQ-LoRA uses 10).</param>
    /// <param name="powerIterations">Subspace iterations; each sharpens the spectrum by one more power of A Aᵀ.</param>
    /// <param name="generator">The CPU generator of the Gaussian sketch (seeded for reproducibility).</param>
    public static (Tensor L1, Tensor L2) Factors(
        Tensor matrix, int rank, int oversampling = 10, int powerIterations = 2, torch.Generator? generator = null)
    {
        long m = matrix.shape[0], n = matrix.shape[1];
        ArgumentOutOfRangeException.ThrowIfLessThan(rank, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(rank, Math.Min(m, n));
        long k = Math.Min(rank + oversampling, Math.Min(m, n));
        using var scope = torch.NewDisposeScope();
        var sketch = torch.randn([n, k], generator: generator).to(matrix.device);
        var q = Orthonormal(matrix.matmul(sketch));                 // (m, k)
        for (int i = 0; i < powerIterations; i++)
        {
            var z = Orthonormal(matrix.t().matmul(q));              // (n, k)
            q = Orthonormal(matrix.matmul(z));                      // (m, k)
        }
        var b = q.t().matmul(matrix);                               // (k, n)
        var (ub, s, vh) = torch.linalg.svd(b, fullMatrices: false);
        var sqrtS = s.narrow(0, 0, rank).sqrt();
        var l1 = q.matmul(ub.narrow(1, 0, rank)).mul_(sqrtS.unsqueeze(0));
        var l2 = vh.narrow(0, 0, rank).mul(sqrtS.unsqueeze(1));
        return (l1.MoveToOuterDisposeScope(), l2.MoveToOuterDisposeScope());
    }

    private static Tensor Orthonormal(Tensor y) => torch.linalg.qr(y, torch.linalg.QRMode.Reduced).Q;
}
