using QuantPeft.Memory.CostModel;
using QuantPeft.Memory.Planning;
using QuantPeft.Memory.Presets;

namespace QuantPeft.Memory.Tests.CostModel;

/// <summary>Adapter parameters and gradients in the adapters' own dtype (<see cref="CostSettings.AdapterBytes"/>).</summary>
public sealed class AdapterBytesTests
{
    // TinyLlama-1.1B, LoRA r=8 on all linears: per layer r·(in + out) summed over q (2048+2048), k and v (2048+256),
    // o (2048+2048), gate and up (2048+5632), down (5632+2048) = 8 · 35,840; 22 layers → 6,307,840 elements.
    private const long LoraElements = 22L * 8 * 35_840;

    private static readonly Strategy Lora = new()
    {
        Weights = WeightFormat.Nf4, DoubleQuant = true, Method = TrainingMethod.Lora, Rank = 8,
        Targets = TargetModules.AllLinear, Optimizer = OptimizerKind.AdamW, Batch = 1, ChunkedLoss = true,
    };

    [Fact]
    public void QuantPeftPricesF32AdaptersAndGradients()
    {
        var inv = ModelInventory.Build(ModelPresets.Get("tinyllama-1.1b"));
        var budget = new Budget { DeviceKind = DeviceKind.Cuda };
        var ours = MemoryCostModel.Estimate(inv, Lora, new Workload(256), budget, CostSettings.QuantPeft);
        var pytorch = MemoryCostModel.Estimate(inv, Lora, new Workload(256), budget, CostSettings.PyTorch);
        Assert.Equal(4 * LoraElements, ours.Device[MemoryComponent.AdapterWeights]);
        Assert.Equal(2 * LoraElements, pytorch.Device[MemoryComponent.AdapterWeights]);
        Assert.Equal(4 * LoraElements, ours.Device[MemoryComponent.Gradients]);
    }

    [Fact]
    public void FullParameterGradientsStayBf16()
    {
        var inv = ModelInventory.Build(ModelPresets.Get("tinyllama-1.1b"));
        var full = Lora with { Weights = WeightFormat.Bf16, DoubleQuant = false, Method = TrainingMethod.Full, Rank = 0, Targets = TargetModules.None };
        var set = TrainableSet.Build(inv, full);
        var e = MemoryCostModel.Estimate(inv, full, new Workload(64), new Budget { DeviceKind = DeviceKind.Cuda }, CostSettings.QuantPeft);
        Assert.Equal(0, e.Device[MemoryComponent.AdapterWeights]);
        Assert.Contains(e.PeakPhase, new[] { "backward", "optimizer-step" });
        Assert.Equal(2 * set.TrainableElements, e.Device[MemoryComponent.Gradients]);
    }
}
