using QuantPeft.Trainers.Adapters;
using TorchSharp;
using static QuantPeft.Trainers.Tests.Adapters.AdapterTestData;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Tests.Adapters;

/// <summary>
/// DoRA's row norms inside a span of frozen adapter weights: computed once and reused, so the outputs are those of a
/// fresh computation while the weights hold still, and a later span (or any forward outside one) sees changed weights.
/// </summary>
public class DoraFrozenNormTests
{
    [Fact]
    public void ASpanReusesTheNormOfItsFirstForward_AndTheNextSpanSeesChangedWeights()
    {
        using var w = Randn(1, ScalarType.Float32, 6, 4);
        using var x = Randn(3, ScalarType.Float32, 2, 4);
        using var layer = new DoraLinear(new DenseLinear(w.clone()), new LoraOptions(2, 4));
        var bWeight = layer.AdapterTensors()["lora_B.weight"];
        using var b1 = Randn(4, ScalarType.Float32, 6, 2);
        using var b2 = Randn(5, ScalarType.Float32, 6, 2);
        using var noGrad = no_grad();
        bWeight.copy_(b1);
        using var fresh1 = layer.forward(x);
        bWeight.copy_(b2);
        using var fresh2 = layer.forward(x);
        Assert.True(MaxAbsDiff(fresh1, fresh2) > 1e-3);   // the two B give different outputs

        bWeight.copy_(b1);
        using (FrozenAdapterWeights.Open())
        {
            using var first = layer.forward(x);
            using var again = layer.forward(x);
            Assert.True(first.equal(fresh1).all().item<bool>());
            Assert.True(again.equal(fresh1).all().item<bool>());
            // Changing B inside the span breaks its promise: the norm is the one of the span's first forward, so only
            // the low-rank term moves. That is what makes it a cache, and why spans are opened only by generation.
            bWeight.copy_(b2);
            using var stale = layer.forward(x);
            Assert.False(stale.equal(fresh2).all().item<bool>());
        }
        using (FrozenAdapterWeights.Open())
        {
            using var next = layer.forward(x);
            Assert.True(next.equal(fresh2).all().item<bool>());
        }
        bWeight.copy_(b1);
        using var outside = layer.forward(x);
        Assert.True(outside.equal(fresh1).all().item<bool>());
    }

    [Fact]
    public void WithGradientsOnTheSpanIsIgnored()
    {
        using var w = Randn(1, ScalarType.Float32, 6, 4);
        using var x = Randn(3, ScalarType.Float32, 2, 4);
        using var layer = new DoraLinear(new DenseLinear(w.clone()), new LoraOptions(2, 4));
        var bWeight = layer.AdapterTensors()["lora_B.weight"];
        using var b1 = Randn(4, ScalarType.Float32, 6, 2);
        using var b2 = Randn(5, ScalarType.Float32, 6, 2);
        Tensor y1, y2;
        using (FrozenAdapterWeights.Open())
        {
            using (no_grad()) bWeight.copy_(b1);
            y1 = layer.forward(x);
            using (no_grad()) bWeight.copy_(b2);
            y2 = layer.forward(x);
        }
        using (y1)
        using (y2)
        using (var outside = layer.forward(x))
        {
            Assert.True(y2.equal(outside).all().item<bool>());
            Assert.True(MaxAbsDiff(y1, y2) > 1e-3);
        }
    }
}
