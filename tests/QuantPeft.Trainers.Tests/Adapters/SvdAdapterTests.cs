using QuantPeft.Trainers.Adapters;
using TorchSharp;
using static TorchSharp.torch;
using static QuantPeft.Trainers.Tests.Adapters.AdapterTestData;

namespace QuantPeft.Trainers.Tests.Adapters;

public class SvdAdapterTests
{
    [Fact]
    public void PissaResidualPlusAdapterEqualsTheWeightAndHoldsTheTopSingularValues()
    {
        using var w = Randn(7, ScalarType.Float32, 20, 12);
        double scaling = 16.0 / 4;
        var (residual, a, b) = SvdInit.Pissa(w, 4, scaling);
        using (residual) using (a) using (b)
        {
            using var rebuilt = residual.add(b.matmul(a).mul(scaling));
            Assert.True(MaxAbsDiff(rebuilt, w) < 1e-4);
            // The removed part is the best rank-4 approximation: its singular values are W's top 4.
            using var removed = b.matmul(a).mul(scaling);
            using var sRemoved = linalg.svdvals(removed);
            using var sW = linalg.svdvals(w);
            for (int i = 0; i < 4; i++)
                Assert.Equal(sW[i].item<float>(), sRemoved[i].item<float>(), 3);
            // The residual keeps exactly the other singular values.
            using var sRes = linalg.svdvals(residual);
            Assert.Equal(sW[4].item<float>(), sRes[0].item<float>(), 3);

            using var x = Randn(8, ScalarType.Float32, 3, 12);
            using var layer = new LoraLinear(new DenseLinear(residual.clone()), new LoraOptions(4, 16), ScalarType.Float32, a, b);
            using var y = layer.forward(x);
            using var expected = x.matmul(w.t());
            Assert.True(MaxAbsDiff(y, expected) < 1e-4);
        }
    }

    [Fact]
    public void OsoraAtInitialisationReproducesTheLayerAndTrainsROutValues()
    {
        using var w = Randn(9, ScalarType.Float32, 16, 10);
        using var bias = Randn(10, ScalarType.Float32, 16);
        using var x = Randn(11, ScalarType.Float32, 4, 10);
        var (residual, u, s, vh) = SvdInit.Osora(w, 3);
        using var layer = new OsoraLinear(new DenseLinear(residual, bias.clone()), u, s, vh);
        using var y = layer.forward(x);
        using var expected = nn.functional.linear(x, w, bias);
        Assert.True(MaxAbsDiff(y, expected) < 1e-4);
        Assert.Equal(3 + 16, layer.TrainableParameterCount);
        var trainable = layer.named_parameters().Where(p => p.parameter.requires_grad).Select(p => p.name).OrderBy(n => n).ToArray();
        Assert.Equal(new[] { "osora_O", "osora_S" }, trainable);
        u.Dispose(); s.Dispose(); vh.Dispose();
    }

    [Fact]
    public void OsoraMergeMatchesTheFactoredForwardAfterTraining()
    {
        using var w = Randn(9, ScalarType.Float64, 8, 6);
        using var x = Randn(12, ScalarType.Float64, 5, 6);
        var (residual, u32, s32, vh32) = SvdInit.Osora(w, 2);
        using var u = u32.to(ScalarType.Float64);
        using var s = s32.to(ScalarType.Float64);
        using var vh = vh32.to(ScalarType.Float64);
        using var layer = new OsoraLinear(new DenseLinear(residual.clone()), u, s, vh, ScalarType.Float64);
        using (torch.no_grad())
        {
            layer.S.mul_(1.5);
            using var o = Randn(13, ScalarType.Float64, 8);
            layer.O.copy_(o);
        }
        using var factored = layer.forward(x);
        // Independent: W' = W_res + diag(O) U diag(S) Vᵀ.
        using var wPrime = residual.add(u.mul(layer.S.detach().unsqueeze(0)).matmul(vh).mul(layer.O.detach().unsqueeze(1)));
        using var expected = x.matmul(wPrime.t());
        Assert.True(MaxAbsDiff(factored, expected) < 1e-10);
        layer.Merge();
        using var merged = layer.forward(x);
        Assert.True(MaxAbsDiff(merged, expected) < 1e-5);
        u32.Dispose(); s32.Dispose(); vh32.Dispose();
    }

    [Fact]
    public void SvdRankOutOfRangeIsRejected()
    {
        using var w = Randn(1, ScalarType.Float32, 4, 3);
        Assert.Contains("rank 4", Assert.Throws<AdapterException>(() => SvdInit.Pissa(w, 4, 1.0)).Message);
        Assert.Contains("rank 0", Assert.Throws<AdapterException>(() => SvdInit.Osora(w, 0)).Message);
    }
}
