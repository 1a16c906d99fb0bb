using QuantPeft.Formats.HuggingFace;
using QuantPeft.Memory.CostModel;
using QuantPeft.Memory.Planning;
using QuantPeft.Memory.Presets;

namespace QuantPeft.Memory.Tests.CostModel;

// The LoRAM paper's pruned parameter storage. The paper's bf16 figures are 2 bytes per kept parameter and
// its QLoRAM figures 4 bits per kept parameter (it does not count block scales or bf16 embeddings; our planner's
// real NF4-DQ storage is checked separately below).
public sealed class LoramStorageTests
{
    private const double GiB = 1L << 30;

    [Theory]
    [InlineData(0.65, 52.34, 13.08)]
    [InlineData(0.75, 40.03, 10.01)]
    [InlineData(0.85, 30.31, 7.58)]
    [InlineData(0.95, 18.00, 4.50)]
    public void Llama2_70BPrunedStorageMatchesPaper(double ratio, double bf16GiB, double fourBitGiB)
    {
        long kept = ModelInventory.Build(ModelPresets.Get("llama-2-70b"), ratio).ParameterCount;
        Assert.Equal(bf16GiB, 2 * kept / GiB, 2);
        Assert.Equal(fourBitGiB, 0.5 * kept / GiB, 2);
    }

    [Fact]
    public void Llama31_70BQloramAt085MatchesPaper()
    {
        ModelSpec spec = ModelPresets.Get("llama-3.1-70b");
        long kept = ModelInventory.Build(spec, 0.85).ParameterCount;
        Assert.Equal(8.31, 0.5 * kept / GiB, 2);
        // 15.81× smaller than the bf16 original, as the paper's abstract states.
        Assert.Equal(15.81, 2.0 * spec.ParameterCount / (0.5 * kept), 2);
    }

    [Fact]
    public void Llama2_70BQloramCompressionAt085Is16_95()
    {
        ModelSpec spec = ModelPresets.Get("llama-2-70b");
        long kept = ModelInventory.Build(spec, 0.85).ParameterCount;
        Assert.Equal(16.95, 2.0 * spec.ParameterCount / (0.5 * kept), 2);
    }

    [Fact]
    public void Llama2_13BAt065KeepsExactlyThePublishedCount() =>
        Assert.Equal(6_005_662_720L, ModelInventory.Build(ModelPresets.Get("llama-2-13b"), 0.65).ParameterCount);

    [Fact]
    public void UnprunedLayersKeepTheirShape()
    {
        ModelSpec spec = ModelPresets.Get("llama-2-70b");
        var inv = ModelInventory.Build(spec, 0.85);
        Assert.Equal(spec.IntermediateSize, inv.Layers[0].Intermediate);
        Assert.Equal(spec.IntermediateSize, inv.Layers[79].Intermediate);
        Assert.Equal(4300, inv.Layers[4].Intermediate);            // ⌊0.15 · 28672⌋
        Assert.Equal(2 * 128, inv.Layers[4].KvDim);                 // 2 of 8 KV heads stay
        Assert.Equal(2 * 8 * 128, inv.Layers[4].QDim);              // with their 8 query heads each
    }

    [Fact]
    public void QloramRealStorageAddsScalesAndBf16Embeddings()
    {
        // Our NF4-DQ storage of the 0.85-pruned LLaMA-2-70B: 4.127 bits per quantized parameter + bf16 embeddings,
        // i.e. a little above the paper's 4-bit payload, never below it.
        var inv = ModelInventory.Build(ModelPresets.Get("llama-2-70b"), 0.85);
        var s = new Strategy { Weights = WeightFormat.Nf4, DoubleQuant = true, Method = TrainingMethod.Loram, Rank = 8,
            Targets = TargetModules.AllLinear, Optimizer = OptimizerKind.AdamW, Batch = 1, Prune = 0.85 };
        long bytes = WeightCost.BaseWeights(inv, s);
        double expected = inv.LinearElements * 4.127 / 8 + 2.0 * (inv.ParameterCount - inv.LinearElements);
        Assert.InRange(bytes / expected, 0.999, 1.001);
        Assert.True(bytes > 0.5 * inv.ParameterCount);
    }
}
