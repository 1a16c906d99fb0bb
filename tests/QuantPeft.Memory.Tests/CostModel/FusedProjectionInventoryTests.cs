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
}
