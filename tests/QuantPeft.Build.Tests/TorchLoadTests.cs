using TorchSharp;
using static TorchSharp.torch;

namespace QuantPeft.Build.Tests;

/// <summary>A broken TorchSharp load (e.g. the libstdc++ shim not applied) fails here, in every CI run.</summary>
public class TorchLoadTests
{
    [Fact]
    public void Bf16MatmulWithBackwardGivesHandComputedGradient()
    {
        // y = sum(A @ B); dy/dA = 1 · Bᵀ, i.e. every row of the gradient holds the row sums of B.
        using var a = tensor(new float[] { 1, 2, 3, 4 }, [2, 2]).to(ScalarType.BFloat16).requires_grad_();
        using var b = tensor(new float[] { 1, 2, 3, 5 }, [2, 2]).to(ScalarType.BFloat16);
        using var y = a.matmul(b).sum();
        y.backward();
        Assert.Equal(ScalarType.BFloat16, y.dtype);
        Assert.Equal(1 * 1 + 2 * 3 + 1 * 2 + 2 * 5 + 3 * 1 + 4 * 3 + 3 * 2 + 4 * 5, (int)y.to(ScalarType.Float32).item<float>());
        float[] grad = a.grad!.to(ScalarType.Float32).data<float>().ToArray();
        Assert.Equal(new float[] { 3, 8, 3, 8 }, grad);
    }
}
