using QuantPeft.Formats.HuggingFace;
using QuantPeft.Memory.Presets;
using QuantPeft.Trainers.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Tests.Model;

public class SyntheticTensorSourceTests
{
    private const string QProj = "model.layers.1.self_attn.q_proj.weight";

    [Fact]
    public void SameNameAndSeedGiveTheSameTensorWhateverTheOrderOfRequests()
    {
        var spec = TinyModels.Llama();
        var a = new SyntheticTensorSource(spec, 5, "a");
        var b = new SyntheticTensorSource(spec, 5, "b");
        using var first = a.Get(QProj);
        foreach (var name in b.Names.Reverse()) b.Get(name).Dispose();
        using var again = b.Get(QProj);
        using var third = a.Get(QProj);
        Assert.True(first.equal(again).all().item<bool>());
        Assert.True(first.equal(third).all().item<bool>());
    }

    [Fact]
    public void AnyRowSliceOfATensorCanBeGeneratedAloneFromItsStream()
    {
        var spec = TinyModels.Llama();
        var source = new SyntheticTensorSource(spec, 9, "s", ScalarType.Float32);
        using var whole = source.Get(QProj);
        long cols = whole.shape[1];
        var rows = new float[3 * cols];
        CounterNormal.Fill(SyntheticTensorSource.TensorSeed(9, QProj), 5 * cols, source.Std, rows);
        using var expected = whole.narrow(0, 5, 3).contiguous();
        Assert.Equal(expected.data<float>().ToArray(), rows);
    }

    [Fact]
    public void DifferentNamesOrSeedsGiveDifferentTensors()
    {
        var spec = TinyModels.Llama();
        var source = new SyntheticTensorSource(spec, 5, "s");
        using var q1 = source.Get(QProj);
        using var q0 = source.Get("model.layers.0.self_attn.q_proj.weight");
        using var otherSeed = new SyntheticTensorSource(spec, 6, "s").Get(QProj);
        // Independent N(0, σ²) draws: equal elements are rare (bf16 ties), never most of them.
        Assert.True(q1.eq(q0).to(ScalarType.Float32).mean().item<float>() < 0.1f);
        Assert.True(q1.eq(otherSeed).to(ScalarType.Float32).mean().item<float>() < 0.1f);
    }

    [Fact]
    public void EveryTensorOfTheSpecHasItsShapeAndRoleScale()
    {
        var spec = TinyModels.Llama(bias: true);
        var source = new SyntheticTensorSource(spec, 1, "s", ScalarType.Float32);
        Assert.Equal(spec.Tensors().Select(t => t.Name), source.Names);
        foreach (var t in spec.Tensors())
        {
            using var value = source.Get(t.Name);
            Assert.Equal(t.Shape, value.shape);
            Assert.Equal(ScalarType.Float32, value.dtype);
            if (t.Role == TensorRole.Norm) Assert.True(value.eq(1).all().item<bool>(), t.Name);
            if (t.Role == TensorRole.Bias) Assert.True(value.eq(0).all().item<bool>(), t.Name);
        }
    }

    [Fact]
    public void A7bPresetsProjectionHasStd002AndTheDocumentedShapeInBf16()
    {
        var spec = ModelPresets.Get("llama-2-7b");
        var source = new SyntheticTensorSource(spec, 0, "synthetic:llama-2-7b");
        Assert.Equal(291, source.Names.Count());
        using var k = source.Get("model.layers.31.self_attn.k_proj.weight");
        Assert.Equal(new long[] { 4096, 4096 }, k.shape);
        Assert.Equal(ScalarType.BFloat16, k.dtype);
        using var f = k.to(ScalarType.Float32);
        // 16.8M samples: the sample std is within 0.03% of σ and the mean within 1e-5 of 0; the bounds are 50x wider.
        Assert.InRange(f.std().item<float>(), 0.0198, 0.0202);
        Assert.InRange(f.mean().item<float>(), -5e-4, 5e-4);
        // Tail share beyond 2σ of the scaled Irwin–Hall(4) values (CounterNormal): 2·(2 − 2/√3)^4 / 24 = 4.25 %
        // (a normal's is 4.55 %); bf16 rounding of values near 0.04 moves it by far less than the bounds.
        Assert.InRange(f.abs().gt(0.04).to(ScalarType.Float32).mean().item<float>(), 0.041, 0.044);
        // Bounded at 2√3 σ = 0.0693 (plus bf16 rounding).
        Assert.True(f.abs().max().item<float>() < 0.0696f);
    }

    [Fact]
    public void TensorSeedsOfA70bModelNeverCollide()
    {
        var names = ModelPresets.Get("llama-2-70b").Tensors().Select(t => t.Name).ToList();
        Assert.Equal(names.Count, names.Select(n => SyntheticTensorSource.TensorSeed(0, n)).Distinct().Count());
        Assert.NotEqual(SyntheticTensorSource.TensorSeed(0, QProj), SyntheticTensorSource.TensorSeed(1, QProj));
    }

    [Fact]
    public void LoadsIntoTheModelAndGivesFiniteLogits()
    {
        var spec = TinyModels.Llama(tied: true);
        using var model = new CausalLm(spec, new DecoderOptions { ComputeDType = ScalarType.Float32 });
        model.LoadWeights(new SyntheticTensorSource(spec, 3, "s"));
        using var ids = TinyModels.Ids(new long[,] { { 1, 2, 3, 4 } });
        using var logits = model.call(ids);
        Assert.True(logits.isfinite().all().item<bool>());
    }

    [Fact]
    public void AnUnknownNameIsAnErrorNamingIt()
    {
        var source = new SyntheticTensorSource(TinyModels.Llama(tied: true), 0, "synthetic:tiny");
        var e = Assert.Throws<ModelException>(() => source.Get("lm_head.weight"));
        Assert.Contains("'lm_head.weight'", e.Message);
        Assert.StartsWith("synthetic:tiny", e.Message);
    }
}
