using static TorchSharp.torch;

namespace QuantPeft.Optimizers;

/// <summary>The Adam arithmetic shared by every rule, in f32 TorchSharp ops.</summary>
internal static class AdamMath
{
    /// <summary>
    /// m ← β1 m + (1−β1) g;  v ← β2 v + (1−β2) g², in place: the rules pass the f32 copies their state codecs
    /// decode (<see cref="State.IMomentState.Decode"/>), so updating them allocates nothing and a step's f32
    /// temporaries stay at g, m and v (docs/planner.md, "Optimizer step temporaries").
    /// </summary>
    public static void Moments(Tensor g, Tensor m, Tensor v, double beta1, double beta2)
    {
        m.mul_(beta1).add_(g, alpha: 1 - beta1);
        v.mul_(beta2).addcmul_(g, g, value: 1 - beta2);
    }

    /// <summary>Zeroes both moments where <paramref name="finite"/> is false, in place (the 8-bit codecs' rule for a non-finite gradient).</summary>
    public static void ZeroWhereNotFinite(Tensor finite, Tensor m, Tensor v)
    {
        using var bad = finite.logical_not();
        m.masked_fill_(bad, 0f);
        v.masked_fill_(bad, 0f);
    }

    /// <summary>
    /// The bias-corrected Adam direction N = (m / (1−β1^t)) / (√v / √(1−β2^t) + eps), so the update is
    /// p ← p − lr·N. (bitsandbytes writes the same quantity as √(1−β2^t)/(1−β1^t) · m/(√v + eps·√(1−β2^t)).)
    /// </summary>
    /// <remarks>Computed in place over <paramref name="m"/> (returned) and <paramref name="v"/> (left holding the
    /// denominator), so the caller encodes both moments first.</remarks>
    public static Tensor DirectionInPlace(Tensor m, Tensor v, long t, double beta1, double beta2, double eps)
    {
        double bc1 = 1 - Math.Pow(beta1, t);
        double bc2 = 1 - Math.Pow(beta2, t);
        var denom = v.sqrt_().div_(Math.Sqrt(bc2)).add_(eps);
        return m.div_(denom).div_(bc1);
    }
}
