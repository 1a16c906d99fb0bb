using TorchSharp.Modules;
using static TorchSharp.torch;

namespace QuantPeft.Optimizers.Tests;

/// <summary>Small helpers that build parameters and groups for the tests.</summary>
internal static class TestParams
{
    public static Parameter From(float[] values, params long[] shape) =>
        new(tensor(values).reshape(shape), requires_grad: true);

    public static Parameter Randn(int seed, ScalarType dtype, params long[] shape)
    {
        var gen = new Generator((ulong)seed);
        return new Parameter(randn(shape, generator: gen).to(dtype), requires_grad: true);
    }

    public static ParamGroup Group(ParamGroupOptions options, params (string, Parameter)[] ps) => new("default", ps, options);

    public static void SetGrad(Parameter p, Tensor grad) => p.grad = grad.to(p.dtype);

    /// <summary>Element-wise identical (bit for bit for finite values).</summary>
    public static bool Same(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();

    public static float[] Values(Tensor t) => t.detach().to(ScalarType.Float32).reshape(-1).data<float>().ToArray();
}
