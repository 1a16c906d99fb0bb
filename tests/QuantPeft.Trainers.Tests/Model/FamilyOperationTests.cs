using QuantPeft.Trainers.Model;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Tests.Model;

/// <summary>The operations the newer families add, each against values worked out by hand on tiny shapes.</summary>
public class FamilyOperationTests
{
    [Fact]
    public void BandedMask_Window3_OnFiveTokens()
    {
        // Query i sees key j when 0 ≤ i − j < 3: itself and the two before it.
        bool[,] expected =
        {
            { true,  false, false, false, false },
            { true,  true,  false, false, false },
            { true,  true,  true,  false, false },
            { false, true,  true,  true,  false },
            { false, false, true,  true,  true  },
        };
        using var mask = AttentionMask.Allowed(5, 3, CPU);
        var got = mask.data<bool>().ToArray();
        for (int i = 0; i < 5; i++)
            for (int j = 0; j < 5; j++)
                Assert.True(expected[i, j] == got[i * 5 + j], $"({i}, {j})");
        Assert.True(AttentionMask.NeedsExplicitMask(5, 3));
        Assert.False(AttentionMask.NeedsExplicitMask(3, 3));   // window covers the sequence: plain causal is exact
        Assert.False(AttentionMask.NeedsExplicitMask(5, null));
    }

    [Fact]
    public void CausalMask_WithoutWindow_IsLowerTriangular()
    {
        using var mask = AttentionMask.Allowed(3, null, CPU);
        Assert.Equal(new[] { true, false, false, true, true, false, true, true, true }, mask.data<bool>().ToArray());
    }

    [Fact]
    public void Softcap_IsTanhOfTheScaledValueTimesTheCap()
    {
        // cap 2: 0 → 0; 2 → 2·tanh(1) = 1.5231883; −6 → 2·tanh(−3) = −1.9901095; 0.02 → 2·tanh(0.01) = 0.0199993.
        using var x = tensor(new float[] { 0f, 2f, -6f, 0.02f });
        using var capped = Softcap.Apply(x, 2.0);
        var v = capped.data<float>().ToArray();
        Assert.Equal(0f, v[0]);
        Assert.Equal(1.5231883f, v[1], 6);
        Assert.Equal(-1.9901095f, v[2], 5);
        Assert.Equal(0.0199993f, v[3], 6);
        // slope 1 − tanh²: at 2 → 1 − tanh²(1) = 0.4199743
        using var slope = Softcap.Derivative(capped, 2.0);
        Assert.Equal(0.4199743f, slope.data<float>()[1], 5);
    }

    [Fact]
    public void UnitOffsetNorm_ScalesByOnePlusWeight()
    {
        // x = (3, 4): mean square 12.5, rms √12.5 = 3.5355339; normalised (0.8485281, 1.1313708).
        // weight (0, −0.5): scales 1 and 0.5 → (0.8485281, 0.5656854). The plain norm would give (0, −0.5657).
        using var norm = new RmsNorm(2, 0.0, ScalarType.Float32, null, unitOffset: true);
        using (no_grad()) norm.Weight.copy_(tensor(new float[] { 0f, -0.5f }));
        using var x = tensor(new float[] { 3f, 4f }).reshape(1, 2);
        var y = norm.call(x).data<float>().ToArray();
        Assert.Equal(0.8485281f, y[0], 6);
        Assert.Equal(0.5656854f, y[1], 6);
    }

    [Fact]
    public void QkNorm_NormalisesEachHeadOverHeadDim_BeforeRope()
    {
        // One token, two query heads of dim 2: head 0 = (3, 4), head 1 = (1, 1). q_norm weight (1, 2).
        // Per head: (3, 4)/3.5355339·(1, 2) = (0.8485281, 2.2627417); (1, 1)/1·(1, 2) = (1, 2).
        // A norm over the whole 4-wide row would give other values ((3,4,1,1)/2.6457513 …).
        using var norm = new RmsNorm(2, 0.0, ScalarType.Float32, null);
        using (no_grad()) norm.Weight.copy_(tensor(new float[] { 1f, 2f }));
        using var q = tensor(new float[] { 3f, 4f, 1f, 1f }).reshape(1, 1, 2, 2);   // (B, T, heads, D)
        var y = norm.call(q).data<float>().ToArray();
        float[] expected = [0.8485281f, 2.2627417f, 1f, 2f];
        for (int i = 0; i < 4; i++) Assert.Equal(expected[i], y[i], 5);
    }

    [Fact]
    public void EagerAndFusedAttention_AgreeWithAWindowAndAScale()
    {
        // The fused kernel folds a non-default scale into q and takes the banded mask; the eager path builds both itself.
        var spec = TinyModels.Llama() with { ModelType = "mistral", SlidingWindow = 3, NumLayers = 1 };
        var checkpoint = TinyModels.RandomCheckpoint(spec, seed: 11);
        using var fused = TinyModels.Build(spec, checkpoint, ScalarType.Float32, AttentionImplementation.Fused);
        using var eager = TinyModels.Build(spec, checkpoint, ScalarType.Float32, AttentionImplementation.Eager);
        using var ids = TinyModels.Ids(new long[,] { { 1, 2, 3, 4, 5, 6, 7 } });
        using var a = fused.call(ids);
        using var b = eager.call(ids);
        Assert.True(a.allclose(b, rtol: 1e-4, atol: 1e-5));
    }
}

public class SoftcapGradientTests
{
    [Fact]
    public void ChunkedLossWithFinalSoftcap_MatchesAutogradThroughTheUnchunkedFormula()
    {
        manual_seed(4);
        using var hidden = randn(7, 5).requires_grad_(true);
        using var weight = randn(11, 5).requires_grad_(true);
        using var labels = tensor(new long[] { 1, 0, 10, -100, 3, 7, 2 });
        using var chunked = QuantPeft.Trainers.Loss.ChunkedCrossEntropy.Compute(hidden, weight, labels, chunkSize: 3, finalLogitSoftcap: 2.0);
        chunked.backward();
        using var gh = hidden.grad!.clone();
        using var gw = weight.grad!.clone();
        hidden.grad!.zero_();
        weight.grad!.zero_();
        // Truth: libtorch's autograd through tanh(z / 2) · 2 and its own cross-entropy.
        using var logits = Softcap.Apply(matmul(hidden, weight.t()), 2.0);
        using var plain = nn.functional.cross_entropy(logits, labels, ignore_index: -100);
        plain.backward();
        Assert.Equal(plain.item<float>(), chunked.item<float>(), 5);
        Assert.True(gh.allclose(hidden.grad!, rtol: 1e-4, atol: 1e-6), "hidden gradient");
        Assert.True(gw.allclose(weight.grad!, rtol: 1e-4, atol: 1e-6), "weight gradient");
    }

    [Fact]
    public void Gemma2_TrainsThroughSoftcappedEagerAttention()
    {
        var spec = QuantPeft.Formats.HuggingFace.ModelConfigReader.Read(FamilyParityTests.Folder("gemma2"));
        using var model = FamilyParityTests.Load(spec, AttentionImplementation.Eager);
        using var ids = FamilyParityTests.Ids([[3, 17, 0, 31, 9, 44, 12, 5]]);
        using var logits = model.call(ids);
        using var loss = logits.square().mean();
        loss.backward();
        var grad = model.named_parameters().First(p => p.name.EndsWith("self_attn.q_proj.weight", StringComparison.Ordinal)).parameter.grad;
        Assert.NotNull(grad);
        Assert.True(grad!.abs().sum().item<float>() > 0);
    }
}
