using QuantPeft.Memory.CostModel;
using QuantPeft.Memory.Planning;
using QuantPeft.Memory.Planning.Methods;
using QuantPeft.Memory.Presets;

namespace QuantPeft.Memory.Tests.Planning;

/// <summary>RandLoRA's price: n·(r + min) trained values per target, n = ⌈min / r⌉, and PEFT's shared bases A [r, 1, min], B [max, n, r].</summary>
public class RandLoraCostTests
{
    private static TrainableSet Set(TargetModules targets) => TrainableSet.Build(ModelInventory.Build(ModelPresets.Get("llama-2-7b")), new Strategy
    {
        Weights = WeightFormat.Nf4, Method = TrainingMethod.RandLora, Optimizer = OptimizerKind.AdamW, Batch = 1, Rank = 32, Targets = targets,
    });

    // Llama-2-7B q and v: 64 matrices of 4096 × 4096, r = 32, so n = 128 bases: λ [32, 128] and γ [128, 4096] each.
    // Shared: A 32·4096 and B 4096·128·32.
    [Fact]
    public void OnQAndVItTrainsTheScalingsOf128BasesAndSharesOneSquareSetOfBases()
    {
        var set = Set(TargetModules.Q | TargetModules.V);
        Assert.Equal(64L * (4096 + 524_288), set.TrainableElements);
        Assert.Equal(64L * (4096 + 524_288) + 131_072 + 16_777_216, set.AdapterElements);
        Assert.Equal(128, set.Tensors.Count);
    }

    // All linears: the widest d_out is 11008 (gate, up) and the widest d_in 11008 (down), so PEFT's bases are
    // 11008 wide on both sides: n = ⌈11008 / 32⌉ = 344, A 32·11008, B 11008·344·32. Every projection has min = 4096.
    [Fact]
    public void OnAllLinearsTheSharedBasesCoverTheWidestInputAndOutput()
    {
        var set = Set(TargetModules.AllLinear);
        Assert.Equal(32L * 7 * (32 * 128 + 128 * 4096), set.TrainableElements);
        Assert.Equal(set.TrainableElements + 32L * 11008 + 11008L * 344 * 32, set.AdapterElements);
    }

    // Kept for backward, per token: the input when d_in ≤ d_out (only an f32 adapter's cast copy is new), Bᵀx (n·r values)
    // when d_in > d_out; nothing for a part of a fused projection, whose first part holds the layer.
    [Fact]
    public void ItKeepsTheInputOrTheNrVectorBx()
    {
        var saved = MethodRegistry.Of(TrainingMethod.RandLora).Adapter!.SavedBytesPerToken;
        Assert.Equal(4L * 4096, saved(new AdapterTarget(4096, 11008, 32, false), true));
        Assert.Equal(0L, saved(new AdapterTarget(4096, 11008, 32, false), false));
        Assert.Equal(4L * 128 * 32, saved(new AdapterTarget(11008, 4096, 32, false), true));
        Assert.Equal(2L * 128 * 32, saved(new AdapterTarget(11008, 4096, 32, false), false));
        Assert.Equal(0L, saved(new AdapterTarget(4096, 4096, 32, true), true));
    }
}
