using QuantPeft.Formats.HuggingFace;
using QuantPeft.Memory.CostModel;
using QuantPeft.Memory.Planning;

namespace QuantPeft.Memory.Tests.Sharding;

/// <summary>
/// Byte counts of <see cref="FsdpShardingCost"/> derived by hand on a tiny Llama: 2 layers, hidden 64, intermediate 128,
/// 4 heads of 16 (no GQA), vocabulary 100, untied head. Per layer q, k, v, o are 64×64 = 4,096 elements and gate, up,
/// down 8,192: 40,960 projection elements; two norms of 64.
/// </summary>
public sealed class FsdpShardingCostTests
{
    private static readonly ModelSpec Tiny = new()
    {
        ModelType = "llama", NumLayers = 2, HiddenSize = 64, IntermediateSize = 128, NumHeads = 4, NumKvHeads = 4,
        VocabSize = 100, MaxPositionEmbeddings = 256,
    };

    private static readonly ModelInventory Inv = ModelInventory.Build(Tiny);
    private static readonly Workload W = new(Seq: 32);
    private static readonly Budget NoOverhead = new() { Overhead = 0, Fragmentation = 0 };

    private static Strategy Full => new()
    {
        Weights = WeightFormat.Bf16, Method = TrainingMethod.Full, Optimizer = OptimizerKind.AdamW, Batch = 1,
        Attention = AttentionKind.Fused, ChunkedLoss = false,
    };

    private static Strategy QLora => new()
    {
        Weights = WeightFormat.Nf4, DoubleQuant = true, Method = TrainingMethod.Lora, Rank = 8, Targets = TargetModules.AllLinear,
        Optimizer = OptimizerKind.AdamW, Batch = 1, Attention = AttentionKind.Fused, ChunkedLoss = false,
    };

    private static ShardedEstimate Price(Strategy s, int gpus, bool offload = false, FsdpPrecision? p = null) =>
        FsdpShardingCost.Estimate(Inv, s, W, NoOverhead, new FsdpLayout(gpus, offload), p ?? FsdpPrecision.HuggingFace, ShardedPlanner.EngineSettings);

    [Fact]
    public void UnitsAreTheRootAndOneUnitPerLayer()
    {
        // Root: embedding 100×64 + head 100×64 + final norm 64 = 12,864 bf16 elements.
        Assert.Equal(25_728, FsdpShardingCost.RootUnitBytes(Inv));
        // bf16 layer: 2·40,960 + two norms 2·128 = 82,176 bytes.
        Assert.Equal(82_176, FsdpShardingCost.LayerUnitBytes(Inv, Full, 0));
        // nf4 layer: packed halves 4·2,048 + 3·4,096 = 20,480, plus the bf16 norms 256.
        Assert.Equal(20_736, FsdpShardingCost.LayerUnitBytes(Inv, QLora, 1));
    }

    [Fact]
    public void ShardsArePaddedToAMultipleOfTheRanks()
    {
        Assert.Equal(12_864, FsdpShardingCost.ShardBytes(25_728, 2));
        // 12,864 elements over 3 ranks = 4,288 and a layer's 41,088 = 3·13,696, both exact; over 5 ranks they pad to
        // 2,573 and 8,218 elements.
        Assert.Equal(8_576, FsdpShardingCost.ShardBytes(25_728, 3));
        Assert.Equal(27_392, FsdpShardingCost.ShardBytes(82_176, 3));
        Assert.Equal(5_146, FsdpShardingCost.ShardBytes(25_728, 5));
        Assert.Equal(16_436, FsdpShardingCost.ShardBytes(82_176, 5));
        Assert.Equal(5_146 + 2 * 16_436, Price(Full, 5).Device[ShardedComponent.ShardedWeights]);
    }

    [Fact]
    public void FullFineTuningShardsWeightsGradientsAndMomentsByTheRanks()
    {
        ShardedEstimate e = Price(Full, 2);
        // Trained units: layer 40,960 + 128 = 41,088 elements each, root 12,864: 95,040 elements, 47,520 per rank.
        Assert.Equal(95_040, e.Device[ShardedComponent.ShardedWeights]);          // bf16 weights are the master copy
        Assert.Equal(0, e.Device[ShardedComponent.AdapterShards]);
        Assert.Equal(2 * 47_520, e.Device[ShardedComponent.Gradients]);             // bf16 gradients
        Assert.Equal(2 * 2 * 47_520, e.Device[ShardedComponent.OptimizerStates]);   // two bf16 moments
        // Gathered: the root 25,728 plus two bf16 layers 2·82,176 (the running one and the prefetched one).
        Assert.Equal(25_728 + 2 * 82_176, e.Device[ShardedComponent.GatheredUnits]);
        // Reduce-scatter of the largest unit (a layer, 41,088 elements): bf16 input plus its half.
        Assert.Equal(2 * (41_088 + 20_544), e.Device[ShardedComponent.CommBuffers]);
        Assert.Equal(0, e.Device[ShardedComponent.QuantState]);
        Assert.Equal(0, e.Device[ShardedComponent.DequantBuffer]);
    }

    [Fact]
    public void QLoraShardsThePackedBaseAndReplicatesTheQuantizationState()
    {
        ShardedEstimate e = Price(QLora, 2);
        // Packed base: root 25,728 + two layers of 20,736, halved.
        Assert.Equal((25_728 + 2 * 20_736) / 2, e.Device[ShardedComponent.ShardedWeights]);
        // Double-quantized state per matrix = uint8 absmax per 64 + f32 per 256 of them + f32 offset + 16-entry and
        // 256-entry f32 tables: 4,096 elements → 64 + 4 + 4 + 64 + 1,024 = 1,160; 8,192 → 128 + 4 + 4 + 64 + 1,024 = 1,224.
        Assert.Equal(2 * (4 * 1_160 + 3 * 1_224), e.Device[ShardedComponent.QuantState]);
        // LoRA r8: q, k, v, o 8·(64 + 64) = 1,024 each; gate, up, down 8·(64 + 128) = 1,536 each: 8,704 per layer,
        // 17,408 in all, 8,704 per rank; PEFT's fp32 master copy, fp32 gradient, two fp32 moments.
        Assert.Equal(4 * 8_704, e.Device[ShardedComponent.AdapterShards]);
        Assert.Equal(4 * 8_704, e.Device[ShardedComponent.Gradients]);
        Assert.Equal(8 * 8_704, e.Device[ShardedComponent.OptimizerStates]);
        // Gathered: root + two packed layers with their adapters in bf16 (2·8,704).
        Assert.Equal(25_728 + 2 * (20_736 + 2 * 8_704), e.Device[ShardedComponent.GatheredUnits]);
        // Largest adapter matrix: gate's or up's B, 128×8 = 1,024 elements; bf16 in, half out.
        Assert.Equal(2 * (1_024 + 512), e.Device[ShardedComponent.CommBuffers]);
        // bitsandbytes dequantizes a whole 128×64 matrix in bf16.
        Assert.Equal(2 * 8_192, e.Device[ShardedComponent.DequantBuffer]);
    }

    [Fact]
    public void APureBf16RecipeHalvesTheAdapterState()
    {
        ShardedEstimate e = Price(QLora, 2, p: FsdpPrecision.AnswerAiBf16);
        Assert.Equal(2 * 8_704, e.Device[ShardedComponent.AdapterShards]);
        Assert.Equal(4 * 8_704, e.Device[ShardedComponent.OptimizerStates]);
    }

    [Fact]
    public void WithoutPrefetchOneDecoderLayerIsGathered()
    {
        ShardedEstimate e = Price(Full, 2, p: FsdpPrecision.HuggingFace with { BackwardPrefetch = false });
        Assert.Equal(25_728 + 82_176, e.Device[ShardedComponent.GatheredUnits]);
    }

    [Fact]
    public void OffloadMovesEveryShardToTheHostOfEachRank()
    {
        ShardedEstimate on = Price(QLora, 2, offload: true), off = Price(QLora, 2);
        foreach (ShardedComponent c in new[] { ShardedComponent.ShardedWeights, ShardedComponent.AdapterShards, ShardedComponent.Gradients, ShardedComponent.OptimizerStates })
            Assert.Equal(0, on.Device[c]);
        long perRank = (25_728 + 2 * 20_736) / 2 + 4 * 8_704 + 4 * 8_704 + 8 * 8_704;
        Assert.Equal(2 * perRank, on.HostBytes);
        Assert.Equal(0, off.HostBytes);
        Assert.Equal(off.Device[ShardedComponent.QuantState], on.Device[ShardedComponent.QuantState]);
        Assert.Equal(off.PeakBytes - perRank, on.PeakBytes);
    }

    [Fact]
    public void ActivationsAreThoseOfOneRanksMicroBatch()
    {
        // Sharding splits state, not data: a rank's activations are the single-device activations of its micro-batch.
        Strategy s = QLora with { Batch = 4, Checkpointing = true };
        ShardedEstimate e = Price(s, 4);
        ActivationBytes a = ActivationCost.Estimate(Inv, TrainableSet.Build(Inv, s), s, W, ShardedPlanner.EngineSettings);
        Assert.Equal(a.Peak, e.Device[ShardedComponent.Activations] + e.Device[ShardedComponent.ActivationGradients] + e.Device[ShardedComponent.Logits]);
    }

    [Fact]
    public void MoreRanksNeverCostMoreAndTheStateShrinksAsOneOverN()
    {
        var llama = ModelInventory.Build(QuantPeft.Memory.Presets.ModelPresets.Get("llama-2-7b"));
        Strategy s = QLora with { Rank = 16, Checkpointing = true };
        long Sharded(int n) => FsdpShardingCost.Estimate(llama, s, W, NoOverhead, new FsdpLayout(n), FsdpPrecision.HuggingFace, ShardedPlanner.EngineSettings).Device[ShardedComponent.ShardedWeights];
        long Peak(int n) => FsdpShardingCost.Estimate(llama, s, W, NoOverhead, new FsdpLayout(n), FsdpPrecision.HuggingFace, ShardedPlanner.EngineSettings).PeakBytes;
        long one = FsdpShardingCost.RootUnitBytes(llama) + Enumerable.Range(0, 32).Sum(l => FsdpShardingCost.LayerUnitBytes(llama, s, l));
        foreach (int n in new[] { 2, 3, 4, 8 })
        {
            // Padding adds less than one element per unit and rank.
            Assert.InRange(n * Sharded(n), one, one + 2L * n * 33);
            Assert.True(Peak(n) <= Peak(n == 2 ? 2 : n - 1));
        }
    }

    [Fact]
    public void OneGpuIsNotASharding()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new FsdpLayout(1));
    }
}
