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
        // LoRA on q only: the norm inputs (64), attention (56), gate, SiLU, up (96); QuantPeft's f32 adapter keeps its
        // own f32 copy of q's input (4·8) and A·x in f32 (4·r = 8), and nothing keeps the bf16 q/k/v input (2·8): the
        // frozen base's matmul saves no operand for a weight that takes no gradient.
        var inv = ModelInventory.Build(Tiny);
        var s = Full with { Method = TrainingMethod.Lora, Rank = 2, Targets = TargetModules.Q };
        var set = TrainableSet.Build(inv, s);
        Assert.Equal(64 + 56 + 96 + 40, ActivationCost.LayerBytesPerToken(inv, set, s, new Workload(16), CostSettings.QuantPeft, 0));
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
    public void QuantPeftsLossChunksAreTokensNotParts()
    {
        // TinyLlama (V 32000, H 2048). 256 tokens, one chunk of 256: forward 10·256·32000 = 81,920,000 beats
        // backward 2·256·2048 + 8·256·32000 + 2·256·2048 = 67,633,152; plus the log-sum-exp 4·256.
        Assert.Equal(81_921_024, ActivationCost.ChunkedLossBytes(32000, 2048, 256, 1024));
        // 2048 tokens: the chunk stays at 1024 tokens (327,680,000), only the per-token terms grow.
        Assert.Equal(327_688_192, ActivationCost.ChunkedLossBytes(32000, 2048, 2048, 1024));
        // A wide hidden state and a small vocabulary: the hidden states' gradient decides backward.
        // 2·4096·8192 + 8·1024·1000 + 2·1024·8192 = 67,108,864 + 8,192,000 + 16,777,216 > 10·1024·1000.
        Assert.Equal(92_078_080 + 4 * 4096, ActivationCost.ChunkedLossBytes(1000, 8192, 4096, 1024));
    }

    [Fact]
    public void F32AdaptersKeepTheirF32IntermediatesPerTarget()
    {
        // One q-only adapter on a Tiny layer; the difference between methods is the adapter's own per-token bytes.
        var inv = ModelInventory.Build(Tiny);
        long h = Tiny.HiddenSize, q = Tiny.NumHeads * Tiny.HeadDim;
        long PerToken(TrainingMethod m, int r)
        {
            var s = Full with { Method = m, Rank = r, Targets = TargetModules.Q };
            return ActivationCost.LayerBytesPerToken(inv, TrainableSet.Build(inv, s), s, new Workload(16), CostSettings.QuantPeft, 0);
        }
        // LoRA: f32 input copy (4h) and A·x (4r). DoRA adds the f32 product its magnitude needs (4·q).
        Assert.Equal(4 * q, PerToken(TrainingMethod.Dora, 4) - PerToken(TrainingMethod.Lora, 4));
        // OSoRA and VeRA: 4r + 4·q against LoRA's 4h + 4r.
        Assert.Equal(4 * q - 4 * h, PerToken(TrainingMethod.Osora, 4) - PerToken(TrainingMethod.Lora, 4));
        Assert.Equal(PerToken(TrainingMethod.Osora, 4), PerToken(TrainingMethod.Vera, 4));
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
        // LoRA r=2 on q and down of the tiny shape (h = 8, intermediate 16): bf16 adapters keep A·x (2·r) and their
        // projection's bf16 input for A's gradient (q/k/v's 2·8, down's 2·16); f32 adapters keep their f32 input copy
        // and A·x in f32 instead, q 4·(8 + 2) = 40, down 4·(16 + 2) = 72, and the bf16 inputs are then kept by nothing.
        var inv = ModelInventory.Build(Tiny);
        var s = Full with { Method = TrainingMethod.Lora, Rank = 2, Targets = TargetModules.Q | TargetModules.Down };
        var set = TrainableSet.Build(inv, s);
        var w = new Workload(16);
        long bf16 = ActivationCost.LayerBytesPerToken(inv, set, s, w, CostSettings.PyTorch, 0);
        long f32 = ActivationCost.LayerBytesPerToken(inv, set, s, w, CostSettings.PyTorch with { AdapterBytes = 4 }, 0);
        Assert.Equal(40 + 72 - 2 * (2 * 2) - 2 * 8 - 2 * 16, f32 - bf16);
    }
}
