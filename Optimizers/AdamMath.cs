using static TorchSharp.torch;

namespace QuantPeft.Optimizers;

/// <summary>The Adam arithmetic shared by every rule, in f32 TorchSharp ops.</summary>
internal static class AdamMath
{
    /// <summary>m ← β1 m + (1−β1) g;  v ← β2 v + (1−β2) g². Returns new tensors.</summary>
    public static (Tensor M, Tensor V) Moments(Tensor g, Tensor m, Tensor v, double beta1, double beta2)
    {
        var mNew = m.mul(beta1).add_(g, alpha: 1 - beta1);
        var vNew = v.mul(beta2).addcmul_(g, g, value: 1 - beta2);
        return (mNew, vNew);
    }

    /// <summary>
    /// The bias-corrected Adam direction N = (m / (1−β1^t)) / (√v / √(1−β2^t) + eps), so the update is
    /// p ← p − lr·N. (bitsandbytes writes the same quantity as √(1−β2^t)/(1−β1^t) · m/(√v + eps·√(1−β2^t)).)
    /// </summary>
    public static Tensor Direction(Tensor m, Tensor v, long t, double beta1, double beta2, double eps)
    {
        double bc1 = 1 - Math.Pow(beta1, t);
        double bc2 = 1 - Math.Pow(beta2, t);
        var denom = v.sqrt().div_(Math.Sqrt(bc2)).add_(eps);
        return m.div(denom).div_(bc1);
    }
}
