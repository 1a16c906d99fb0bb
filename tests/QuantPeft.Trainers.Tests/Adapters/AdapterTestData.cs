using TorchSharp;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Tests.Adapters;

internal static class AdapterTestData
{
    public static Tensor Randn(long seed, ScalarType dtype, params long[] shape)
    {
        using var gen = new Generator((ulong)seed);
        using var t = torch.randn(shape, generator: gen, dtype: ScalarType.Float32);
        return t.to(dtype);
    }

    public static double MaxAbsDiff(Tensor a, Tensor b)
    {
        using var d = a.to(ScalarType.Float64).sub(b.to(ScalarType.Float64)).abs().max();
        return d.item<double>();
    }

    public static double MaxAbs(Tensor a)
    {
        using var d = a.to(ScalarType.Float64).abs().max();
        return d.item<double>();
    }
}
