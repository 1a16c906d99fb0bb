using QuantPeft.Formats.HuggingFace;
using QuantPeft.Memory.CostModel;
using QuantPeft.Memory.Planning;

namespace QuantPeft.Memory.Tests.CostModel;

public sealed class ActivationCostTests
{
    // h = 8, 2 query heads of 4, 1 KV head, I = 16, vocab 10.
    private static readonly ModelSpec Tiny = new()
    {
        ModelType = "llama", NumLayers = 3, HiddenSize = 8, IntermediateSize = 16, NumHeads = 2, NumKvHeads = 1, VocabSize = 10,
    };

    private static Strategy Full => new() { Weights = WeightFormat.Bf16, Method = TrainingMethod.Full, Optimizer = OptimizerKind.AdamW, Batch = 1 };

    [Fact]
    public void FullTrainingLayerMatchesHandCount()
    {
        // Per token, bytes: RMSNorm fp32 inputs 2·4·8 + their bf16 outputs (trainable weights) 2·2·8 = 96;
        // q/k/v input 2·8 = 16; fused attention q 2·8, k 2·4, v 2·4, output 2·8, lse 4·2 = 56; o input 2·8 = 16;
        // gate/up input 16; gate, SiLU(gate), up 3·2·16 = 96; down input 2·16 = 32. Total 328.
        var inv = ModelInventory.Build(Tiny);
        var set = TrainableSet.Build(inv, Full);
        Assert.Equal(328, ActivationCost.LayerBytesPerToken(inv, set, Full, new Workload(16), CostSettings.QuantPeft, 0));
    }

    [Fact]
    public void FrozenLinearsWithoutAdaptersKeepNoInput()
    {
        // LoRA on q only: the norm inputs (64), q/k/v input (16), attention (56), gate, SiLU, up (96); QuantPeft's f32
        // adapter keeps its own f32 copy of q's input (4·8) and A·x in f32 (4·r = 8).
        var inv = ModelInventory.Build(Tiny);
        var s = Full with { Method = TrainingMethod.Lora, Rank = 2, Targets = TargetModules.Q };
        var set = TrainableSet.Build(inv, s);
        Assert.Equal(64 + 16 + 56 + 96 + 40, ActivationCost.LayerBytesPerToken(inv, set, s, new Workload(16), CostSettings.QuantPeft, 0));
    }

    [Fact]
    public void EagerAttentionAddsSixBytesPerHeadPerKeyPosition()
    {
        var inv = ModelInventory.Build(Tiny);
        var set = TrainableSet.Build(inv, Full);
        var w = new Workload(64);
        long fused = ActivationCost.LayerBytesPerToken(inv, set, Full, w, CostSettings.QuantPeft, 0);
        long eager = ActivationCost.LayerBytesPerToken(inv, set, Full with { Attention = AttentionKind.Eager }, w, CostSettings.QuantPeft, 0);
        // eager: q 16 + repeated k, v 2·16 + probabilities 6·2·64; fused: q, k, v, out, lse = 56.
        Assert.Equal(48 + 6 * 2 * 64 - 56, eager - fused);
    }

    [Fact]
    public void CheckpointingKeepsOnlyLayerInputsPlusOneLayer()
    {
        var inv = ModelInventory.Build(Tiny);
        var set = TrainableSet.Build(inv, Full);
        var w = new Workload(32);
        var plain = ActivationCost.Estimate(inv, set, Full, w, CostSettings.QuantPeft);
        var ckpt = ActivationCost.Estimate(inv, set, Full with { Checkpointing = true }, w, CostSettings.QuantPeft);
        long head = (4 * 8 + 2 * 8) * 32L;
        Assert.Equal(3 * 328 * 32L + head, plain.Saved);
        Assert.Equal(3 * 2 * 8 * 32L + head, ckpt.Saved);
        Assert.Equal(328 * 32L, ckpt.Recompute);
    }

    [Fact]
    public void FusedActivationsScaleLinearlyWithSequenceAndEagerQuadratically()
    {
        var inv = ModelInventory.Build(Tiny);
        var set = TrainableSet.Build(inv, Full);
        long Saved(Strategy s, int seq) => ActivationCost.Estimate(inv, set, s, new Workload(seq), CostSettings.QuantPeft).Saved;
        Assert.Equal(2 * Saved(Full, 128), Saved(Full, 256));
        var eager = Full with { Attention = AttentionKind.Eager };
        long growth = Saved(eager, 256) - 2 * Saved(eager, 128);
        Assert.Equal(3 * 6 * 2 * (256L * 256 - 2 * 128 * 128), growth);
    }

    [Fact]
    public void UnchunkedLossKeepsFiveTimesTheBf16Logits()
    {
        Assert.Equal(10 * 2048L * 32000, ActivationCost.LogitsBytes(32000, 2048, chunked: false, chunks: 8));
        Assert.Equal(3 * 2048L * 32000, ActivationCost.LogitsBytes(32000, 2048, chunked: true, chunks: 8));
    }

    [Fact]
    public void BitsandbytesKeepsQuantizedLinearInputs()
    {
        var inv = ModelInventory.Build(Tiny);
        var s = Full with { Method = TrainingMethod.Lora, Rank = 2, Targets = TargetModules.Q, Weights = WeightFormat.Nf4 };
        var set = TrainableSet.Build(inv, s);
        var w = new Workload(16);
        long plain = ActivationCost.LayerBytesPerToken(inv, set, s, w, CostSettings.PyTorch, 0);
        long bnb = ActivationCost.LayerBytesPerToken(inv, set, s, w, CostSettings.PyTorchBitsandbytes, 0);
        Assert.Equal(2 * 8 + 2 * 8 + 2 * 16, bnb - plain); // o, gate/up and down inputs
    }

    [Fact]
    public void F32AdaptersKeepTheirInputCopyPerProjection()
    {
        // LoRA r=2 on q and down of the tiny shape (h = 8, intermediate 16): with bf16 adapters each keeps A·x (2·r);
        // with f32 adapters each keeps its f32 input copy and A·x in f32: q 4·(8 + 2) = 40, down 4·(16 + 2) = 72.
        var inv = ModelInventory.Build(Tiny);
        var s = Full with { Method = TrainingMethod.Lora, Rank = 2, Targets = TargetModules.Q | TargetModules.Down };
        var set = TrainableSet.Build(inv, s);
        var w = new Workload(16);
        long bf16 = ActivationCost.LayerBytesPerToken(inv, set, s, w, CostSettings.PyTorch, 0);
        long f32 = ActivationCost.LayerBytesPerToken(inv, set, s, w, CostSettings.PyTorch with { AdapterBytes = 4 }, 0);
        Assert.Equal(40 + 72 - 2 * (2 * 2), f32 - bf16);
    }
}
