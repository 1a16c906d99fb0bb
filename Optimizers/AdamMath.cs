using TorchSharp;
using static TorchSharp.torch;
using QuantPeft.Quant.Torch;

namespace QuantPeft.Optimizers;

/// <summary>The Adam arithmetic shared by every rule, in f32 TorchSharp ops.</summary>
/// <remarks>
/// Scalars are created explicitly and disposed after the op, or passed through <see cref="ScalarOps"/>: an implicit
/// <c>double → Scalar</c> (and the alpha = 1 of TorchSharp's one-argument <c>add_</c>) is left to the finalizer, which
/// can free it while libtorch reads it (the <c>toFloat</c> error once seen in <see cref="DirectionInPlace"/>).
/// </remarks>
internal static class AdamMath
{
    /// <summary>
    /// m ← β1 m + (1−β1) g;  v ← β2 v + (1−β2) g², in place: the rules pass the f32 copies their state codecs
    /// decode (<see cref="State.IMomentState.Decode"/>), so updating them allocates nothing and a step's f32
    /// temporaries stay at g, m and v (docs/planner.md, "Optimizer step temporaries").
    /// </summary>
    public static void Moments(Tensor g, Tensor m, Tensor v, double beta1, double beta2)
    {
        using Scalar b1 = beta1.ToScalar(), oneMinusB1 = (1 - beta1).ToScalar();
        using Scalar b2 = beta2.ToScalar(), oneMinusB2 = (1 - beta2).ToScalar();
        m.mul_(b1).add_(g, alpha: oneMinusB1);
        v.mul_(b2).addcmul_(g, g, value: oneMinusB2);
    }

    /// <summary>
    /// Null when every element of <paramref name="g"/> is finite (the common case), else the full finiteness mask.
    /// </summary>
    /// <remarks>
    /// libtorch's <c>isfinite</c> on a float tensor materialises |g| (4 bytes per element) and three 1-byte masks, so
    /// a whole-tensor check of a 65M-element embedding gradient costs 7 bytes per element beside g, m and v; checked in
    /// chunks of the 8-bit codec's size it costs 7 bytes per chunk element, and the mask (with the masked updates it
    /// feeds) is only built for a gradient that has a NaN or ±Inf.
    /// </remarks>
    public static Tensor? FiniteMaskOrNull(Tensor g)
    {
        using (var flat = g.reshape(-1))
        {
            long n = flat.numel();
            bool allFinite = true;
            for (long start = 0; start < n && allFinite; start += State.Blockwise8BitStateCodec.ChunkElements)
            {
                using var scope = NewDisposeScope();
                long length = Math.Min(State.Blockwise8BitStateCodec.ChunkElements, n - start);
                allFinite = flat.narrow(0, start, length).isfinite().all().item<bool>();
            }
            if (allFinite) return null;
        }
        return g.isfinite();
    }

    /// <summary>Zeroes both moments where <paramref name="finite"/> is false, in place (the 8-bit codecs' rule for a non-finite gradient).</summary>
    public static void ZeroWhereNotFinite(Tensor finite, Tensor m, Tensor v)
    {
        using var bad = finite.logical_not();
        using Scalar zero = 0f.ToScalar();
        m.masked_fill_(bad, zero);
        v.masked_fill_(bad, zero);
    }

    /// <summary>
    /// The bias-corrected Adam direction N = (m / (1−β1^t)) / (√v / √(1−β2^t) + eps), so the update is
    /// p ← p − lr·N. (bitsandbytes writes the same quantity as √(1−β2^t)/(1−β1^t) · m/(√v + eps·√(1−β2^t)).)
    /// </summary>
    /// <remarks>Computed in place over <paramref name="m"/> (returned) and <paramref name="v"/> (left holding the
    /// denominator), so the caller encodes both moments first.</remarks>
    public static Tensor DirectionInPlace(Tensor m, Tensor v, long t, double beta1, double beta2, double eps)
    {
        using Scalar bc1 = (1 - Math.Pow(beta1, t)).ToScalar();
        using Scalar sqrtBc2 = Math.Sqrt(1 - Math.Pow(beta2, t)).ToScalar();
        var denom = v.sqrt_().div_(sqrtBc2).AddInPlace(eps);
        return m.div_(denom).div_(bc1);
    }

    /// <summary>p ← p + alpha · update, with the scalar kept alive for the whole native call (see the type's remarks).</summary>
    public static void AddScaled(Tensor p, Tensor update, double alpha)
    {
        using Scalar a = alpha.ToScalar();
        p.add_(update, alpha: a);
    }

    /// <summary>p ← p · factor, with the scalar kept alive for the whole native call.</summary>
    public static void Scale(Tensor p, double factor)
    {
        using Scalar f = factor.ToScalar();
        p.mul_(f);
    }
}
