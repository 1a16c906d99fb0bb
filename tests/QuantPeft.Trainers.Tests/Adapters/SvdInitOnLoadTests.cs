using QuantPeft.Memory.Planning;
using QuantPeft.Trainers.Adapters;
using QuantPeft.Trainers.Model;
using QuantPeft.Trainers.Tests.Model;
using TorchSharp;
using static TorchSharp.torch;
using static QuantPeft.Trainers.Tests.Adapters.AdapterTestData;

namespace QuantPeft.Trainers.Tests.Adapters;

public class SvdInitOnLoadTests
{
    private const int Rank = 4;

    // TinyModels.Llama: hidden 16, intermediate 24, 4 heads of 4 with 2 KV heads. Output widths of
    // q, k, v, o, gate, up, down: 16, 8, 8, 16, 24, 24, 16 = 112 per layer, 2 layers.
    private const long OutWidthsPerLayer = 16 + 8 + 8 + 16 + 24 + 24 + 16;

    private static CausalLm Load(LinearFactory baseFactory, SvdInitKind kind, ScalarType dtype, DictionarySource checkpoint, double scaling = 2.0)
    {
        var spec = TinyModels.Llama();
        var model = new CausalLm(spec, new DecoderOptions
        {
            ComputeDType = dtype,
            LinearFactory = SvdInitOnLoad.Wrap(baseFactory, kind, Rank, scaling, ModelAdapters.AllLinear),
        });
        model.LoadWeights(checkpoint);
        return model;
    }

    private static Tensor Weight(DictionarySource checkpoint, string path) => checkpoint.Get(path + ".weight");

    [Fact]
    public void OsoraLoadedOnADenseBaseReproducesTheOriginalLogitsAndTrainsROutValuesPerLayer()
    {
        var spec = TinyModels.Llama();
        var checkpoint = TinyModels.RandomCheckpoint(spec, 3);
        using var reference = TinyModels.Build(spec, checkpoint);
        using var model = Load(BaseWeights.Factory(WeightFormat.Bf16, false, ScalarType.Float32), SvdInitKind.Osora, ScalarType.Float32, checkpoint);
        var adapters = ModelAdapters.Attach(model, AdapterMethod.Osora, new LoraOptions(Rank, 8), ModelAdapters.AllLinear, seed: 1);
        using var ids = TinyModels.Ids(new long[,] { { 1, 5, 9, 2, 30, 7 } });
        using var expected = reference.forward(ids);
        using var actual = model.forward(ids);
        Assert.True(MaxAbsDiff(actual, expected) < 1e-4, $"max diff {MaxAbsDiff(actual, expected)}");

        // r + d_out per projection: 7 projections of rank 4 plus the output widths, for each of 2 layers.
        long expectedCount = 2 * (7 * Rank + OutWidthsPerLayer);
        Assert.Equal(expectedCount, ModelAdapters.TrainableCount(adapters));
        var trainable = model.named_parameters().Where(p => p.parameter.requires_grad).ToList();
        Assert.Equal(expectedCount, trainable.Sum(p => p.parameter.numel()));
        Assert.All(trainable, p => Assert.True(p.name.EndsWith(".osora_S") || p.name.EndsWith(".osora_O"), p.name));
        Assert.Equal(expectedCount, ModelAdapters.TrainableParameters(adapters).Sum(p => p.Param.numel()));
        foreach (var a in adapters) foreach (var t in a.Initial!.Values) t.Dispose();
    }

    [Fact]
    public void OsoraOnNf4QuantizesTheResidualAndStaysWithinItsFourBitError()
    {
        var spec = TinyModels.Llama();
        var checkpoint = TinyModels.RandomCheckpoint(spec, 4);
        using var model = Load(BaseWeights.Factory(WeightFormat.Nf4, true, ScalarType.BFloat16), SvdInitKind.Osora, ScalarType.BFloat16, checkpoint);
        var adapters = ModelAdapters.Attach(model, AdapterMethod.Osora, new LoraOptions(Rank, 8), ModelAdapters.AllLinear, seed: 1);
        foreach (var a in adapters)
        {
            var layer = (OsoraLinear)a.Layer;
            Assert.IsType<QuantizedBaseLinear>(layer.BaseLayer);
            using var w = Weight(checkpoint, a.ModulePath);
            var (residual, u, s, vh) = SvdInit.Osora(w, Rank);
            using (residual) using (u) using (s) using (vh)
            using (var deq = layer.BaseLayer.DenseWeight(ScalarType.Float32))
            using (var delta = layer.Delta())
            using (var effective = deq.add(delta))
            {
                // NF4's widest gap between neighbouring codes is 1 − 0.6962 (−1 … −0.6962), so rounding moves an
                // element by at most 0.152 of its 64-block's absmax; 0.17 leaves room for the bf16 cast and the
                // 8-bit double-quantized absmax. The bound is on the RESIDUAL's absmax: that is what was quantized.
                using var err = effective.sub(w).abs().reshape(-1, 64).amax(1);
                using var blockMax = residual.abs().reshape(-1, 64).amax(1);
                Assert.True(err.le(blockMax.mul(0.17)).all().item<bool>(), a.ModulePath);
                Assert.True(err.max().item<float>() > 0, "the base really is quantized");
                // The layer computes exactly that effective weight.
                using var x = Randn(5, ScalarType.BFloat16, 3, layer.BaseLayer.InFeatures);
                using var y = layer.forward(x).to(ScalarType.Float32);
                using var yRef = x.to(ScalarType.Float32).matmul(effective.t());
                Assert.True(MaxAbsDiff(y, yRef) < 0.05 * (MaxAbs(yRef) + 1), $"{a.ModulePath}: {MaxAbsDiff(y, yRef)}");
            }
        }
        foreach (var a in adapters) foreach (var t in a.Initial!.Values) t.Dispose();
    }

    [Fact]
    public void PissaOnABf16BaseReproducesEveryWeightAndStartsFromTheTopSingularTriplets()
    {
        var spec = TinyModels.Llama();
        var checkpoint = TinyModels.RandomCheckpoint(spec, 5);
        double scaling = 8.0 / Rank;
        using var model = Load(BaseWeights.Factory(WeightFormat.Bf16, false, ScalarType.BFloat16), SvdInitKind.Pissa, ScalarType.BFloat16, checkpoint, scaling);
        var adapters = ModelAdapters.Attach(model, AdapterMethod.Pissa, new LoraOptions(Rank, 8), ModelAdapters.AllLinear, seed: 1);
        Assert.Equal(14, adapters.Count);
        foreach (var a in adapters)
        {
            var layer = (LoraLinear)a.Layer;
            using var w = Weight(checkpoint, a.ModulePath);
            using var baseW = layer.BaseLayer.DenseWeight(ScalarType.Float32);
            using var delta = layer.B.detach().matmul(layer.A.detach()).mul(scaling);
            // W_res (bf16) + s·B·A = W, up to bf16 rounding of the residual (8 significant bits).
            using var rebuilt = baseW.add(delta);
            Assert.True(MaxAbsDiff(rebuilt, w) <= MaxAbs(baseW) / 128, $"{a.ModulePath}: {MaxAbsDiff(rebuilt, w)}");
            // What the adapter starts with is W's best rank-r part: its singular values are W's top r.
            using var sW = linalg.svdvals(w);
            using var sDelta = linalg.svdvals(delta);
            for (int i = 0; i < Rank; i++)
                Assert.Equal(sW[i].item<float>(), sDelta[i].item<float>(), 3);
            // The initial factors kept for export are the adapter's own starting values.
            Assert.Equal(0.0, MaxAbsDiff(a.Initial!["lora_A.weight"], layer.A));
        }
        foreach (var a in adapters) foreach (var t in a.Initial!.Values) t.Dispose();
    }

    [Fact]
    public void VeraTrainsROutValuesPerLayerOverSharedFrozenMatricesAndStartsAsTheBase()
    {
        var spec = TinyModels.Llama();
        var checkpoint = TinyModels.RandomCheckpoint(spec, 6);
        using var model = new CausalLm(spec, new DecoderOptions { ComputeDType = ScalarType.Float32, LinearFactory = BaseWeights.Factory(WeightFormat.Bf16, false, ScalarType.Float32) });
        model.LoadWeights(checkpoint);
        using var ids = TinyModels.Ids(new long[,] { { 3, 1, 4, 1, 5, 9 } });
        using var before = model.forward(ids);
        var (maxIn, maxOut) = ModelAdapters.VeraDimensions(model, ModelAdapters.AllLinear);
        Assert.Equal((24L, 24L), (maxIn, maxOut));   // down_proj reads 24, gate/up write 24
        using var shared = new VeraSharedMatrices(Rank, maxIn, maxOut, seed: 9);
        var adapters = ModelAdapters.Attach(model, AdapterMethod.Vera, new LoraOptions(Rank, 8), ModelAdapters.AllLinear, seed: 1, vera: shared);
        long expectedCount = 2 * (7 * Rank + OutWidthsPerLayer);
        Assert.Equal(expectedCount, ModelAdapters.TrainableCount(adapters));
        var trainable = model.named_parameters().Where(p => p.parameter.requires_grad).ToList();
        Assert.Equal(expectedCount, trainable.Sum(p => p.parameter.numel()));
        Assert.All(trainable, p => Assert.Contains(".vera_lambda_", p.name));
        Assert.False(shared.A.requires_grad || shared.B.requires_grad);
        using var after = model.forward(ids);
        Assert.Equal(0.0, MaxAbsDiff(after, before));   // λ_b = 0
    }

    [Fact]
    public void PissaWithoutTheLoadHookIsAnErrorNamingTheModule()
    {
        var spec = TinyModels.Llama();
        using var model = new CausalLm(spec, new DecoderOptions { ComputeDType = ScalarType.Float32, LinearFactory = BaseWeights.Factory(WeightFormat.Bf16, false, ScalarType.Float32) });
        model.LoadWeights(TinyModels.RandomCheckpoint(spec, 1));
        var e = Assert.Throws<AdapterException>(() => ModelAdapters.Attach(model, AdapterMethod.Pissa, new LoraOptions(Rank, 8), ["q_proj"], seed: 1));
        Assert.Contains("model.layers.0.self_attn.q_proj", e.Message);
        Assert.Throws<AdapterException>(() => ModelAdapters.Attach(model, AdapterMethod.Vera, new LoraOptions(Rank, 8), ["q_proj"], seed: 1));
    }
}
