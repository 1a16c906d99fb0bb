using QuantPeft.Memory.CostModel;
using QuantPeft.Memory.Planning;
using QuantPeft.Memory.Presets;

namespace QuantPeft.Memory.Tests.CostModel;

public class PreferenceCostTests
{
    private static Strategy Qlora(int batch, bool checkpointing) => new()
    {
        Weights = WeightFormat.Nf4, DoubleQuant = true, Method = TrainingMethod.Lora, Rank = 16, Targets = TargetModules.AllLinear,
        Optimizer = OptimizerKind.AdamW, Checkpointing = checkpointing, Attention = AttentionKind.Fused, Batch = batch, ChunkedLoss = true,
    };

    private static MemoryEstimate Estimate(string model, Strategy s, Workload w) =>
        MemoryCostModel.Estimate(ModelInventory.Build(ModelPresets.Get(model), s.Prune), s, w, new Budget(), CostSettings.QuantPeft);

    [Theory]
    [InlineData("llama-3.1-8b", 1, 1024, true)]
    [InlineData("llama-2-7b", 2, 512, false)]
    [InlineData("tinyllama-1.1b", 4, 256, false)]
    public void APairBatchOfBIsPricedAsTwoBSequencesAndTheReferenceForwardKeepsNoActivations(string model, int pairs, int seq, bool checkpointing)
    {
        // Chosen and rejected go through one forward: B pairs hold exactly the activations of 2B SFT sequences.
        var dpo = Estimate(model, Qlora(pairs, checkpointing), new Workload(seq) { RowsPerExample = 2, ReferenceForward = true });
        var orpo = Estimate(model, Qlora(pairs, checkpointing), new Workload(seq) { RowsPerExample = 2 });
        var sft = Estimate(model, Qlora(2 * pairs, checkpointing), new Workload(seq));
        Assert.Equal(sft.PeakBytes, orpo.PeakBytes);
        // The reference forward runs without autograd before the policy's: a block's working set, never every block's.
        Assert.Equal(sft.PeakBytes, dpo.PeakBytes);
        Assert.NotEqual("reference-forward", dpo.PeakPhase);
        var s = Qlora(pairs, checkpointing);
        var inv = ModelInventory.Build(ModelPresets.Get(model), 0);
        long reference = PreferenceCost.ReferenceForward(inv, s, new Workload(seq) { RowsPerExample = 2, ReferenceForward = true }, CostSettings.QuantPeft);
        Assert.True(reference < sft.Device[MemoryComponent.Activations] + sft.Device[MemoryComponent.ActivationGradients] + sft.Device[MemoryComponent.Logits],
            $"reference forward {reference} vs the policy's activations");
    }

    [Fact]
    public void TheReferenceForwardHoldsTheStreamOneBlockAndOneRowsLogits()
    {
        // Hand-worked for 2 rows of 1 token: the block's bf16 input and output (2 × 2h bytes a token), one block's
        // working set, and one row's logits over the 128,256-token vocabulary (bf16, plus one f32 chunk).
        var s = Qlora(1, true);
        var inv = ModelInventory.Build(ModelPresets.Get("llama-3.1-8b"), 0);
        long reference = PreferenceCost.ReferenceForward(inv, s, new Workload(1) { RowsPerExample = 2, ReferenceForward = true }, CostSettings.QuantPeft);
        long h = 4096;
        long layer = ActivationCost.LayerBytesPerToken(inv, TrainableSet.Build(inv, s), s, new Workload(1), CostSettings.QuantPeft, 0);
        long logits = 2L * 128256 + 8 * ((128256 + CostSettings.QuantPeft.LossChunks - 1) / CostSettings.QuantPeft.LossChunks);
        Assert.Equal(2 * 2 * h * 2 + layer * 2 + logits, reference);
    }

    [Fact]
    public void TheCacheCostsAFewDozenHostBytesPerPair() => Assert.Equal(80_000, PreferenceCost.CacheBytes(1000));
}
