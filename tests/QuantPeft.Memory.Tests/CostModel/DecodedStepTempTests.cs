using QuantPeft.Memory.CostModel;
using QuantPeft.Memory.Planning;
using QuantPeft.Memory.Presets;

namespace QuantPeft.Memory.Tests.CostModel;

/// <summary>
/// QuantPeft's own optimizer step (<see cref="CostSettings.DecodedMomentStep"/>): the temporaries of one tensor's
/// update, hand-derived from the rules' code (docs/planner.md, "Optimizer step temporaries"), and the layer-wise
/// phases as the runtime runs them, on the TinyLlama-1.1B architecture (vocab 32000, hidden 2048, 22 layers).
/// </summary>
public sealed class DecodedStepTempTests
{
    private static readonly Strategy Full = new() { Weights = WeightFormat.Bf16, Method = TrainingMethod.Full, Optimizer = OptimizerKind.AdamW, Batch = 1 };

    [Fact]
    public void AdamWHoldsTheF32GradientAndBothDecodedMoments()
    {
        Assert.Equal(12_000, OptimizerCost.DecodedStepTemp(new TrainableTensor(1000, 0), Full));
        // bf16 states are decoded to f32 as well.
        Assert.Equal(12_000, OptimizerCost.DecodedStepTemp(new TrainableTensor(1000, 0), Full with { Optimizer = OptimizerKind.PagedAdamW }));
    }

    [Theory]
    [InlineData(1000L, 12_000L)]                  // under 4,096 elements: dense f32 states
    [InlineData(4096L, 348_160L)]                 // one chunk: 8n + 77n
    [InlineData(1L << 22, 114_294_784L)]          // 8·2²² + 77·2²⁰ beats 12·2²² + 20·2²⁰ = 71,303,168
    [InlineData(1L << 24, 222_298_112L)]          // 12·2²⁴ + 20·2²⁰ beats 8·2²⁴ + 77·2²⁰ = 214,958,080
    public void EightBitAdamAddsTheChunkedCodecsTemporaries(long n, long expected)
    {
        Assert.Equal(expected, OptimizerCost.DecodedStepTemp(new TrainableTensor(n, 0), Full with { Optimizer = OptimizerKind.AdamW8bit }));
    }

    [Fact]
    public void GaloreTakesTheLargerOfUpdateAndProjectorRefresh()
    {
        // 64×32, r 8: P = 8·64 = 512, J = 8·32 = 256. Update 8·2048 + 12·512 + 4·256 = 23,552;
        // refresh 8·2048 + 4·32·(64+32) = 28,672.
        var t = new TrainableTensor(64 * 32, 0, 64, 32);
        var s = Full with { Method = TrainingMethod.Galore, Optimizer = OptimizerKind.Galore, Rank = 8 };
        Assert.Equal(28_672, OptimizerCost.DecodedStepTemp(t, s));
        // A tensor GaLore does not project is plain AdamW.
        Assert.Equal(12 * 500, OptimizerCost.DecodedStepTemp(new TrainableTensor(500, UpdateUnit.FinalNorm), s));
    }

    [Fact]
    public void PyTorchSettingsKeepTheirOwnStepTemporaries()
    {
        var inv = ModelInventory.Build(ModelPresets.Get("tinyllama-1.1b"));
        var set = TrainableSet.Build(inv, Full);
        // foreach AdamW: sqrt(v) for every tensor at once, in fp32.
        Assert.Equal(4 * set.TrainableElements, OptimizerCost.Estimate(set, Full, CostSettings.PyTorch, DeviceKind.Cuda).StepTemp);
        // QuantPeft: one tensor at a time, the embedding (32000·2048) decides: 12 bytes per element.
        Assert.Equal(12L * 32000 * 2048, OptimizerCost.Estimate(set, Full, CostSettings.QuantPeft, DeviceKind.Cuda).StepTemp);
    }

    [Fact]
    public void LayerwiseStepsProjectionsInBackwardAndTheRestAfterIt()
    {
        var inv = ModelInventory.Build(ModelPresets.Get("tinyllama-1.1b"));
        var s = Full with { Method = TrainingMethod.Galore, Optimizer = OptimizerKind.Galore8bit, Rank = 128, Layerwise = true };
        var e = MemoryCostModel.Estimate(inv, s, new Workload(64), new Budget { DeviceKind = DeviceKind.Cpu }, CostSettings.QuantPeft);
        Assert.Equal("optimizer-step", e.PeakPhase);
        // After backward: the gradients of embedding, head (32000·2048 each) and 45 norms (2048 each) in bf16,
        // and the 8-bit step of the embedding: g, m, v in f32 (12 bytes per element) and the decoder's chunk (20 bytes
        // per element of 2²⁰).
        Assert.Equal(2 * (2L * 32000 * 2048 + 45 * 2048), e.Device[MemoryComponent.Gradients]);
        Assert.Equal(12L * 32000 * 2048 + 20L * (1 << 20), e.Device[MemoryComponent.OptimizerStepTemp]);
        Assert.Equal(0, e.Device[MemoryComponent.Activations]);
    }

    [Fact]
    public void ATrainingHeadAddsItsF32AccumulatorToTheLossBackward()
    {
        // Qwen2.5-0.5B (vocab 151936, hidden 896, tied embeddings: the head is the embedding, which LISA trains), γ=1,
        // 32 rows of 2048 tokens: the head's gradient 2·V·H and f32 accumulator 4·V·H beside the saved activations and
        // logits outweigh every gradient LISA produces (embedding, one layer) at the end of backward.
        var inv = ModelInventory.Build(ModelPresets.Get("qwen2.5-0.5b"));
        var s = Full with { Method = TrainingMethod.Lisa, LisaLayers = 1, Batch = 32, ChunkedLoss = true };
        var w = new Workload(2048);
        var budget = new Budget { DeviceKind = DeviceKind.Cpu };
        var e = MemoryCostModel.Estimate(inv, s, w, budget, CostSettings.QuantPeft);
        Assert.Equal("loss-backward", e.PeakPhase);
        long vh = 151936L * 896;
        Assert.Equal(2 * vh, e.Device[MemoryComponent.Gradients]);
        // QuantPeft's loss in chunks of 1024 tokens: forward's 10·1024·V (bf16 logits, f32 upcast, log-sum-exp's
        // shifted copy) outweighs backward's 2·T·H + 8·1024·V + 2·1024·H; plus the f32 log-sum-exp 4·T.
        Assert.Equal(10L * 1024 * 151936 + 4L * 32 * 2048 + 4 * vh, e.Device[MemoryComponent.Logits]);
        // PyTorch stacks have no such phase.
        Assert.NotEqual("loss-backward", MemoryCostModel.Estimate(inv, s, w, budget, CostSettings.PyTorch).PeakPhase);
    }

    [Fact]
    public void OnTheCpuTheLoadStagesTheLargestTensorAsItArrives()
    {
        // TinyLlama NF4: the bf16 embedding (32000·2048, 2 bytes) outweighs the largest quantized projection in f32
        // (5632·2048, 4 bytes); a bf16 base stages the embedding in bf16 as well.
        var tiny = ModelInventory.Build(ModelPresets.Get("tinyllama-1.1b"));
        var qlora = new Strategy { Weights = WeightFormat.Nf4, DoubleQuant = true, Method = TrainingMethod.Lora, Rank = 8,
            Targets = TargetModules.AllLinear, Optimizer = OptimizerKind.AdamW, Batch = 1, ChunkedLoss = true };
        Assert.Equal(2L * 32000 * 2048, WeightCost.LoadStaging(tiny, qlora));
        Assert.Equal(2L * 32000 * 2048, WeightCost.LoadStaging(tiny, qlora with { Weights = WeightFormat.Bf16, DoubleQuant = false }));
        // Llama-2-70B NF4: the 28672·8192 projections in f32 outweigh the 32000·8192 embedding in bf16.
        var big = ModelInventory.Build(ModelPresets.Get("llama-2-70b"));
        Assert.Equal(4L * 28672 * 8192, WeightCost.LoadStaging(big, qlora));

        // Qwen2.5-0.5B NF4 (tied 151936·896 embedding), 16 tokens: base + staged embedding is the CPU peak (at 64 tokens
        // the loss's 10·64·V-byte chunk already outweighs the staging); on CUDA
        // the staging is in host memory and not priced.
        var qwen = ModelInventory.Build(ModelPresets.Get("qwen2.5-0.5b"));
        var cpu = MemoryCostModel.Estimate(qwen, qlora, new Workload(16), new Budget { DeviceKind = DeviceKind.Cpu }, CostSettings.QuantPeft);
        Assert.Equal("load", cpu.PeakPhase);
        Assert.Equal(2L * 151936 * 896, cpu.Device[MemoryComponent.LoadStaging]);
        Assert.Equal(0, cpu.Device[MemoryComponent.AdapterWeights]);
        Assert.Equal(WeightCost.BaseWeights(qwen, qlora), cpu.Device[MemoryComponent.BaseWeights]);
        var cuda = MemoryCostModel.Estimate(qwen, qlora, new Workload(16), new Budget { DeviceKind = DeviceKind.Cuda }, CostSettings.QuantPeft);
        Assert.Equal(0, cuda.Device[MemoryComponent.LoadStaging]);
        Assert.NotEqual("load", cuda.PeakPhase);
    }
}
