using TorchSharp;
using static TorchSharp.torch;

namespace QuantPeft.Quant.Tests;

internal static class TensorAssert
{
    /// <summary>Same shape, same dtype and bit-for-bit equal values (NaN never equal).</summary>
    public static bool Identical(Tensor a, Tensor b)
    {
        if (!a.shape.SequenceEqual(b.shape) || a.dtype != b.dtype) return false;
        using var eq = a.eq(b);
        using var all = eq.all();
        return all.item<bool>();
    }

    public static float MaxAbsDiff(Tensor a, Tensor b)
    {
        using var d = (a.to(ScalarType.Float32) - b.to(ScalarType.Float32)).abs().max();
        return d.item<float>();
    }
}
