using QuantPeft.Memory.CostModel;
using QuantPeft.Memory.Planning;
using QuantPeft.Memory.Presets;

namespace QuantPeft.Memory.Tests.CostModel;

public sealed class WeightCostTests
{
    private const long N = 4096L * 11008;

    [Fact]
    public void Nf4WithoutDoubleQuantIs4_5Bits() =>
        Assert.Equal(4.5, 8.0 * WeightCost.LinearBytes(N, WeightFormat.Nf4, false) / N, 3);

    [Fact]
    public void Nf4WithDoubleQuantIs4_127Bits() =>
        // QLoRA: 4 + 8/64 + 32/(64·256) = 4.1270 bits/param.
        Assert.Equal(4 + 8.0 / 64 + 32.0 / (64 * 256), 8.0 * WeightCost.LinearBytes(N, WeightFormat.Nf4, true) / N, 3);

    [Fact]
    public void DoubleQuantSaves0_373BitsPerParameter()
    {
        long saved = WeightCost.LinearBytes(N, WeightFormat.Fp4, false) - WeightCost.LinearBytes(N, WeightFormat.Fp4, true);
        Assert.Equal(0.373, 8.0 * saved / N, 3);
    }

    [Fact]
    public void Llama2_7BDoubleQuantSavingMatchesLitGptInference()
    {
        // LitGPT inference on Llama 2 7B: 4.57 GB (NF4) vs 4.26 GB (NF4-DQ): 0.31 GB, the same model otherwise.
        var inv = ModelInventory.Build(ModelPresets.Get("llama-2-7b"));
        var s = new Strategy { Weights = WeightFormat.Nf4, Method = TrainingMethod.Lora, Rank = 8, Targets = TargetModules.AllLinear,
            Optimizer = OptimizerKind.AdamW, Batch = 1 };
        double saved = (WeightCost.BaseWeights(inv, s) - WeightCost.BaseWeights(inv, s with { DoubleQuant = true })) / 1e9;
        Assert.InRange(saved, 0.31 * 0.95, 0.31 * 1.05);
    }

    [Fact]
    public void Bf16KeepsTwoBytesPerParameter()
    {
        var spec = ModelPresets.Get("llama-2-7b");
        var s = new Strategy { Weights = WeightFormat.Bf16, Method = TrainingMethod.Full, Optimizer = OptimizerKind.AdamW, Batch = 1 };
        Assert.Equal(2 * spec.ParameterCount, WeightCost.BaseWeights(ModelInventory.Build(spec), s));
    }

    [Fact]
    public void QuantizedFormatsLeaveEmbeddingsHeadAndNormsInBf16()
    {
        var inv = ModelInventory.Build(ModelPresets.Get("llama-2-7b"));
        var s = new Strategy { Weights = WeightFormat.Int8, Method = TrainingMethod.Lora, Rank = 8, Targets = TargetModules.AllLinear,
            Optimizer = OptimizerKind.AdamW, Batch = 1 };
        long nonLinear = inv.ParameterCount - inv.LinearElements;
        long linear = inv.Linears.Sum(t => WeightCost.LinearBytes(t.Elements, WeightFormat.Int8, false));
        Assert.Equal(2 * nonLinear + linear, WeightCost.BaseWeights(inv, s));
        Assert.Equal(262_410_240L, nonLinear); // 2 · 32000 · 4096 embedding + head, 65 · 4096 norms
    }

    [Fact]
    public void LqLoraAt2_75BitsFor70BIsAboutTwentyFourGigabytesOfQuantizedWeights()
    {
        // LQ-LoRA: LLaMA-2-70B at 2.75 bits ≈ 23.7 GB for the quantized matrices (27 GB with factors and the rest).
        var inv = ModelInventory.Build(ModelPresets.Get("llama-2-70b"));
        long linear = inv.Linears.Sum(t => WeightCost.LinearBytes(t.Elements, WeightFormat.LqLora, false, 2.75));
        Assert.Equal(inv.LinearElements * 2.75 / 8 / 1e9, linear / 1e9, 2);
    }

    [Fact]
    public void DequantBufferIsTheWholeMatrixForBitsandbytesAndOneSlabForQuantPeft()
    {
        // TinyLlama: gate/up [5632, 2048], down [2048, 5632]. bitsandbytes dequantizes a whole matrix: 5632·2048 bf16.
        // QuantPeft decodes at most 1024 rows at a time: down_proj's 1024 rows of 5632 are the largest slab.
        var inv = ModelInventory.Build(ModelPresets.Get("tinyllama-1.1b"));
        var qlora = new Strategy { Weights = WeightFormat.Nf4, DoubleQuant = true, Method = TrainingMethod.Lora, Rank = 8, Optimizer = OptimizerKind.AdamW, Batch = 1 };
        Assert.Equal(2L * 5632 * 2048, WeightCost.DequantBuffer(inv, qlora));
        Assert.Equal(2L * 1024 * 5632, WeightCost.DequantBuffer(inv, qlora, CostSettings.QuantPeft.DequantSlabRows));
        Assert.Equal(0, WeightCost.DequantBuffer(inv, qlora with { Weights = WeightFormat.Bf16 }, 1024));
        // A projection of fewer than 1024 rows is one slab: Qwen2.5-0.5B's down_proj [896, 4864] beats gate/up's
        // 1024-row slabs of [4864, 896].
        var qwen = ModelInventory.Build(ModelPresets.Get("qwen2.5-0.5b"));
        Assert.Equal(2L * 896 * 4864, WeightCost.DequantBuffer(qwen, qlora, 1024));
    }

    [Fact]
    public void OnAGpuTheDecodeSlabIsAbout32MiValues()
    {
        // Llama-2-7B: q/k/v/o [4096, 4096], gate/up [11008, 4096], down [4096, 11008]. A GPU slab holds
        // max(1024, 2^25 / in) rows: 8192 rows of gate/up (8192·4096 = 2^25 values), 3048 rows of down
        // (3048·11008 = 33,552,384 values), and all 4096 rows of q. The largest is gate/up's: 64 MiB in bf16, and the
        // torch-kernel decode holds 6 more bytes a value while it runs (int32 pair indices, f32 gathered values).
        var inv = ModelInventory.Build(ModelPresets.Get("llama-2-7b"));
        var qlora = new Strategy { Weights = WeightFormat.Nf4, DoubleQuant = true, Method = TrainingMethod.Lora, Rank = 8, Optimizer = OptimizerKind.AdamW, Batch = 1 };
        Assert.Equal(8L * 8192 * 4096, WeightCost.DequantBuffer(inv, qlora, 1024, 32L << 20));
        // On the host the same model decodes 1024 rows: down_proj's 1024·11008.
        Assert.Equal(2L * 1024 * 11008, WeightCost.DequantBuffer(inv, qlora, 1024));
        // A narrow model's projections fit one GPU slab whole: TinyLlama's largest matrix, 5632·2048.
        Assert.Equal(8L * 5632 * 2048, WeightCost.DequantBuffer(ModelInventory.Build(ModelPresets.Get("tinyllama-1.1b")), qlora, 1024, 32L << 20));
    }
}
