using QuantPeft.Memory.CostModel;
using QuantPeft.Memory.Planning;
using QuantPeft.Memory.Presets;

namespace QuantPeft.Memory.Tests.CostModel;

/// <summary>The attention mask of packed rows (examples kept apart), priced against byte counts worked out by hand.</summary>
public sealed class PackedMaskCostTests
{
    [Fact]
    public void OneBf16MaskPerRowOfTSquared_ForAModelWithoutWindows()
    {
        // llama-3.2-1b, batch 2 × seq 2048: 2 · 1 · 2048 · 2048 elements · 2 bytes = 16,777,216 bytes (16 MiB).
        var spec = ModelPresets.Get("llama-3.2-1b");
        Assert.Equal(16_777_216L, ActivationCost.PackedMaskBytes(spec, 2, 2048));
    }

    [Fact]
    public void OneMaskPerDistinctWindow_ForGemmaLocalAndGlobalLayers()
    {
        // gemma-2-2b: sliding window 4096 on every other layer, none on the rest → two masks: 2 · 1 · 1024² · 2 = 4,194,304.
        var spec = ModelPresets.Get("gemma-2-2b");
        Assert.Equal(4_194_304L, ActivationCost.PackedMaskBytes(spec, 1, 1024));
    }

    [Fact]
    public void PackedRowsAddTheMaskToTheSavedActivations_WithAndWithoutCheckpointing()
    {
        var inv = ModelInventory.Build(ModelPresets.Get("llama-3.2-1b"));
        foreach (bool checkpointing in new[] { false, true })
        {
            var s = new Strategy { Weights = WeightFormat.Nf4, Method = TrainingMethod.Lora, Rank = 8, Targets = TargetModules.Q, Optimizer = OptimizerKind.AdamW, Batch = 2, Checkpointing = checkpointing };
            var set = TrainableSet.Build(inv, s);
            var w = new Workload(Seq: 512);
            var padded = ActivationCost.Estimate(inv, set, s, w, CostSettings.QuantPeft);
            var packed = ActivationCost.Estimate(inv, set, s, w with { PackedRows = true }, CostSettings.QuantPeft);
            // 2 rows · 512² · 2 bytes = 1,048,576, kept from the forward to the end of backward.
            Assert.Equal(1_048_576L, packed.Saved - padded.Saved);
            Assert.Equal(padded.Recompute, packed.Recompute);
            Assert.Equal(padded.Logits, packed.Logits);
        }
    }
}
