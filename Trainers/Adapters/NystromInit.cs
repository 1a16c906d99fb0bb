using TorchSharp;
using static TorchSharp.torch;
using QuantPeft.Quant.Torch;

namespace QuantPeft.Trainers.Adapters;

/// <summary>
/// NLoRA's initialisation (Guo et al., 2025, Figure 3): the Nyström approximation of W [out, in] from its first r
/// columns and rows. With W = [[A_W, F_W], [B_W, C_W]] (A_W the leading r×r block), W ≈ C·U⁺·R for the columns
/// C = [A_W; B_W] = W[:, :r], the rows R = [A_W, F_W] = W[:r, :] and U = A_W; it is exact when W has rank r and A_W is
/// invertible. NLoRA starts B = C, A = R and the intermediate M = U⁺/s, so that s·B·M·A is the approximation, and the
/// base keeps the residual W − C·U⁺·R: the model the run starts from is the pretrained one.
/// </summary>
public static class NystromInit
{
    /// <summary>The residual (in <paramref name="weight"/>'s dtype) and the f32 factors A [r, in], B [out, r], M [r, r].</summary>
    /// <param name="weight">W [out, in].</param>
    /// <param name="rank">r ∈ [1, min(out, in)].</param>
    /// <param name="scaling">The adapter's scaling s (α/r), divided out of M.</param>
    /// <exception cref="AdapterException">W is not 2-D or r is out of range.</exception>
    public static (Tensor Residual, Tensor A, Tensor B, Tensor M) Nlora(Tensor weight, int rank, double scaling)
    {
        if (weight.dim() != 2) throw new AdapterException($"NLoRA needs a 2-D weight, got shape [{string.Join(", ", weight.shape)}]");
        long max = Math.Min(weight.shape[0], weight.shape[1]);
        if (rank <= 0 || rank > max) throw new AdapterException($"NLoRA rank {rank} must be in [1, min(out, in) = {max}]");
        using var scope = NewDisposeScope();
        // f32 (f64 for an f64 weight), as PiSSA's init: one projection's copy and the product s·B·M·A at a time.
        var work = weight.dtype == ScalarType.Float64 ? ScalarType.Float64 : ScalarType.Float32;
        var w = weight.detach().to(work);
        // R = [A_W, F_W]. Its first r rows are already contiguous, so without the clone A would be a view that keeps the
        // whole f32 copy of W alive for as long as the factors wait to be attached: every projection's, 4 bytes a
        // parameter of the model at the end of the load (4.6 GB above the plan on TinyLlama before this clone).
        var a = w.narrow(0, 0, rank).to(ScalarType.Float32).clone();
        var b = w.narrow(1, 0, rank).to(ScalarType.Float32).contiguous();    // C = [A_W; B_W]
        // A_W⁺ in f64: A_W may be ill-conditioned.
        var uPlus = linalg.pinv(w.narrow(0, 0, rank).narrow(1, 0, rank).to(ScalarType.Float64));
        var m = uPlus.Div(scaling).to(ScalarType.Float32).contiguous();
        // The residual subtracts what the f32 factors really compute, s·B·M·A, so base + adapter is W up to the
        // residual's own rounding (M = A_W⁺/s amplifies any difference by A_W's condition number).
        var approx = b.to(work).matmul(m.to(work)).matmul(a.to(work)).Mul(scaling);
        var residual = w.sub(approx).to(weight.dtype);
        return (residual.MoveToOuterDisposeScope(), a.MoveToOuterDisposeScope(), b.MoveToOuterDisposeScope(), m.MoveToOuterDisposeScope());
    }
}
