using TorchSharp;
using TorchSharp.Utils;
using static TorchSharp.torch;
using QuantPeft.Quant.Torch;

namespace QuantPeft.Trainers.Adapters;

/// <summary>
/// SVD-based adapter initialisations, done while the full-precision weight is in hand (before a
/// quantized base is built from the residual).
/// </summary>
public static class SvdInit
{
    /// <summary>
    /// PiSSA: W = U S Vᵀ (f32); with S_r' = S_r / s: B = U_r √S_r' (out×r), A = √S_r' V_rᵀ (r×in), and the base
    /// becomes W_res = W − s·B·A = W − U_r S_r V_rᵀ, so the layer's function is unchanged at initialisation.
    /// </summary>
    /// <param name="weight">W [out, in] in any float dtype (not modified).</param>
    /// <param name="rank">r ≤ min(out, in).</param>
    /// <param name="scaling">The adapter scaling s (α/r or α/√r).</param>
    /// <returns>The residual (same dtype as <paramref name="weight"/>), A and B in f32; the caller owns them.</returns>
    public static (Tensor Residual, Tensor A, Tensor B) Pissa(Tensor weight, int rank, double scaling)
    {
        CheckRank(weight, rank, "PiSSA");
        using var scope = torch.NewDisposeScope();
        var (u, s, vh, w) = TopSingular(weight, rank);
        Tensor sqrtS = s.Div(scaling).sqrt();                 // (r)
        Tensor b = u.mul(sqrtS.unsqueeze(0));                 // (out, r)
        Tensor a = vh.mul(sqrtS.unsqueeze(1));                // (r, in)
        Tensor residual = w.sub(b.matmul(a).Mul(scaling)).to(weight.dtype);
        return (residual.MoveToOuterDisposeScope(), a.contiguous().MoveToOuterDisposeScope(), b.contiguous().MoveToOuterDisposeScope());
    }

    /// <summary>
    /// OSoRA: keeps the top-r triplets U_r (out×r), S_r (r), V_rᵀ (r×in) of W (f32) and the residual
    /// W_res = W − U_r diag(S_r) V_rᵀ (the "default" initialisation with O₀ = 1).
    /// </summary>
    public static (Tensor Residual, Tensor U, Tensor S, Tensor Vh) Osora(Tensor weight, int rank)
    {
        CheckRank(weight, rank, "OSoRA");
        using var scope = torch.NewDisposeScope();
        var (u, s, vh, w) = TopSingular(weight, rank);
        Tensor residual = w.sub(u.mul(s.unsqueeze(0)).matmul(vh)).to(weight.dtype);
        // Copies, not views: the leading rows of V_hᵀ (and of S) are contiguous already, and a view would keep the whole
        // min(out, in) × in f32 V_hᵀ of every projection alive until the adapters are attached.
        return (residual.MoveToOuterDisposeScope(), u.contiguous().MoveToOuterDisposeScope(), s.clone().MoveToOuterDisposeScope(), vh.clone().MoveToOuterDisposeScope());
    }

    private static (Tensor U, Tensor S, Tensor Vh, Tensor W) TopSingular(Tensor weight, int rank)
    {
        Tensor w = weight.detach().to(ScalarType.Float32);
        var (u, s, vh) = linalg.svd(w, fullMatrices: false);
        return (u.narrow(1, 0, rank), s.narrow(0, 0, rank), vh.narrow(0, 0, rank), w);
    }

    private static void CheckRank(Tensor weight, int rank, string method)
    {
        if (weight.dim() != 2) throw new AdapterException($"{method} needs a 2-D weight, got shape [{string.Join(", ", weight.shape)}]");
        long max = Math.Min(weight.shape[0], weight.shape[1]);
        if (rank <= 0 || rank > max) throw new AdapterException($"{method} rank {rank} must be in [1, min(out, in) = {max}]");
    }
}
