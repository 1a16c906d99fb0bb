using QuantPeft.Memory.CostModel;
using QuantPeft.Memory.Planning;
using QuantPeft.Memory.Presets;

namespace QuantPeft.Memory.Tests.CostModel;

/// <summary>
/// Phi-3's fused qkv_proj and gate_up_proj hold exactly the rows of q, k, v and gate, up: the inventory prices them as those
/// (the same weights, inputs and outputs), so a Phi-3 model costs what a Llama block of the same widths costs.
/// </summary>
public sealed class FusedProjectionInventoryTests
{
    [Fact]
    public void Phi4_HasTheSevenProjectionsOfItsWidths_AndItsParameterTotal()
    {
        var spec = ModelPresets.Get("phi-4");
        var inv = ModelInventory.Build(spec);
        Assert.Equal(spec.ParameterCount, inv.ParameterCount);
        var layer = inv.LinearsByLayer[3].ToDictionary(t => t.Module, t => (t.Out, t.In));
        // 40 heads and 10 kv heads of 128, intermediate 17920, hidden 5120 (worked by hand).
        Assert.Equal((5120L, 5120L), layer[LinearModule.Q]);
        Assert.Equal((1280L, 5120L), layer[LinearModule.K]);
        Assert.Equal((1280L, 5120L), layer[LinearModule.V]);
        Assert.Equal((5120L, 5120L), layer[LinearModule.O]);
        Assert.Equal((17920L, 5120L), layer[LinearModule.Gate]);
        Assert.Equal((17920L, 5120L), layer[LinearModule.Up]);
        Assert.Equal((5120L, 17920L), layer[LinearModule.Down]);
    }

    [Fact]
    public void Phi4_PricesLikeTheSameWidthsWithSeparateProjections()
    {
        var phi = ModelPresets.Get("phi-4");
        var split = phi with { ModelType = "llama" };
        var a = ModelInventory.Build(phi);
        var b = ModelInventory.Build(split);
        Assert.Equal(b.LinearElements, a.LinearElements);
        Assert.Equal(b.Linears.Select(t => (t.Layer, t.Module, t.Out, t.In)), a.Linears.Select(t => (t.Layer, t.Module, t.Out, t.In)));
    }

    private static Strategy Adapter(TrainingMethod method, int rank) => new()
    {
        Weights = WeightFormat.Nf4, DoubleQuant = true, Method = method, Rank = rank,
        Targets = TargetModules.AllLinear, Optimizer = OptimizerKind.AdamW, Batch = 1, ChunkedLoss = true,
    };

    [Fact]
    public void Phi4_LoraOnTheFusedProjections_SharesOneAPerFusedLinear()
    {
        // r 16, h 5120: qkv_proj r·(5120 + 7680) = 204,800; o_proj r·(5120 + 5120) = 163,840; gate_up_proj r·(5120 + 35,840)
        // = 655,360; down_proj r·(17,920 + 5120) = 368,640; 1,392,640 a layer, 40 layers. Split q/k/v and gate/up would add
        // 3·r·h = 245,760 a layer.
        var inv = ModelInventory.Build(ModelPresets.Get("phi-4"));
        Assert.Equal(40L * 1_392_640, TrainableSet.Build(inv, Adapter(TrainingMethod.Lora, 16)).AdapterElements);
        // DoRA adds one magnitude per output row: 7680 + 5120 + 35,840 + 5120 = 53,760 a layer.
        Assert.Equal(40L * (1_392_640 + 53_760), TrainableSet.Build(inv, Adapter(TrainingMethod.Dora, 16)).AdapterElements);
        var llamaShaped = ModelInventory.Build(ModelPresets.Get("phi-4") with { ModelType = "llama" });
        Assert.Equal(40L * (1_392_640 + 245_760), TrainableSet.Build(llamaShaped, Adapter(TrainingMethod.Lora, 16)).AdapterElements);
    }

    [Fact]
    public void Phi4_VeraSharedMatricesCoverTheFusedOutputs()
    {
        // VeRA r 256: shared A [r, max in 17,920] and B [max out, r] with max out = gate_up_proj's 35,840 rows; per layer λ_d
        // once per adapter (4 · 256) and λ_b per output row (7680 + 5120 + 35,840 + 5120 = 53,760).
        var inv = ModelInventory.Build(ModelPresets.Get("phi-4"));
        long expected = 256L * 17_920 + 35_840L * 256 + 40L * (4 * 256 + 53_760);
        Assert.Equal(expected, TrainableSet.Build(inv, Adapter(TrainingMethod.Vera, 256)).AdapterElements);
    }

    [Fact]
    public void FusedTargetNames_StandForTheirParts()
    {
        Assert.Equal(TargetModules.Q | TargetModules.K | TargetModules.V | TargetModules.O, Knob.ParseTargets("qkv,o"));
        Assert.Equal(TargetModules.Mlp, Knob.ParseTargets("gate_up,down"));
    }
}
