using QuantPeft.Quant.Codecs;
using QuantPeft.Quant.Torch;
using QuantPeft.Trainers.Adapters;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Tests.Recipes;

public class QuantizedBaseLinearTests
{
    [Theory]
    [InlineData(FourBitType.Nf4, true)]
    [InlineData(FourBitType.Fp4, false)]
    public void ForwardAndBackwardEqualDenseLinearOnTheDequantizedWeight(FourBitType format, bool doubleQuant)
    {
        manual_seed(3);
        using var w = randn(48, 64);
        using var bias = randn(48);
        using var q = new QuantizedBaseLinear(64, 48, format, doubleQuant, ScalarType.Float32);
        q.LoadTensor("weight", w);
        q.LoadTensor("bias", bias);
        using var dense = new DenseLinear(q.DenseWeight(ScalarType.Float32), bias.clone());

        using var x1 = randn(5, 64).requires_grad_(true);
        using var x2 = x1.detach().clone().requires_grad_(true);
        using var y1 = q.forward(x1);
        using var y2 = dense.forward(x2);
        Assert.True(y1.equal(y2).all().item<bool>());
        using var g = randn(5, 48);
        y1.backward([g]);
        y2.backward([g]);
        Assert.True(x1.grad!.allclose(x2.grad!, rtol: 1e-6, atol: 1e-6));
        // 4-bit rounding really happened: the dequantized weight differs from the original but stays close (absmax blocks of 64).
        using var wq = q.DenseWeight(ScalarType.Float32);
        Assert.False(wq.equal(w).all().item<bool>());
        Assert.True(wq.sub(w).abs().max().item<float>() < 0.3f * w.abs().max().item<float>());
    }

    [Fact]
    public void BaseIsFrozenAndOnlyTheAdapterGetsGradients()
    {
        manual_seed(4);
        using var q = new QuantizedBaseLinear(32, 16, FourBitType.Nf4, true, ScalarType.Float32);
        q.SetWeight(randn(16, 32));
        Assert.Empty(q.parameters());
        Assert.False(q.SupportsMerge);
        using var lora = new LoraLinear(q, new LoraOptions(4, 8));
        using (no_grad()) lora.B.normal_();
        using var y = lora.forward(randn(3, 32));
        y.sum().backward();
        Assert.NotNull(lora.A.grad);
        Assert.NotNull(lora.B.grad);
        Assert.Throws<AdapterException>(() => lora.Merge());
    }

    [Fact]
    public void WrongShapeIsAnErrorNamingBothShapes()
    {
        using var q = new QuantizedBaseLinear(32, 16, FourBitType.Nf4, false);
        var e = Assert.Throws<AdapterException>(() => q.LoadTensor("weight", zeros(32, 16)));
        Assert.Contains("[16, 32]", e.Message);
        Assert.Contains("[32, 16]", e.Message);
    }
}
