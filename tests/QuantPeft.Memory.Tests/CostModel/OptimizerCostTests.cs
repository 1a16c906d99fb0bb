using QuantPeft.Memory.CostModel;
using QuantPeft.Memory.Planning;
using QuantPeft.Memory.Presets;

namespace QuantPeft.Memory.Tests.CostModel;

public sealed class OptimizerCostTests
{
    private static readonly Strategy Full = new() { Weights = WeightFormat.Bf16, Method = TrainingMethod.Full, Optimizer = OptimizerKind.AdamW, Batch = 1 };

    [Fact]
    public void GaloreStoresProjectorAndProjectedMomentsPerMatrix()
    {
        // GaLore §4: per m×n matrix (m ≤ n) the optimizer stores m·r (projector) + 2·n·r (moments).
        var t = new TrainableTensor(4096L * 11008, 0, 11008, 4096);
        var s = Full with { Method = TrainingMethod.Galore, Optimizer = OptimizerKind.Galore, Rank = 128 };
        var settings = CostSettings.QuantPeft with { AdamStateBytes = 2 };
        Assert.Equal(2 * (4096L * 128 + 2 * 11008L * 128), OptimizerCost.StateBytes(t, s, settings));
    }

    [Fact]
    public void EightBitAdamIsTwoBytesPlusBlockScales()
    {
        var t = new TrainableTensor(1L << 20, 0);
        Assert.Equal(2 * (1L << 20) + 2 * 4 * ((1L << 20) / 256), OptimizerCost.StateBytes(t, Full with { Optimizer = OptimizerKind.AdamW8bit }, CostSettings.QuantPeft));
        var small = new TrainableTensor(1000, 0);
        Assert.Equal(8000, OptimizerCost.StateBytes(small, Full with { Optimizer = OptimizerKind.AdamW8bit }, CostSettings.QuantPeft));
    }

    [Fact]
    public void FullAdamWInFp32IsEightBytesPerParameter()
    {
        var spec = ModelPresets.Get("llama-2-7b");
        var set = TrainableSet.Build(ModelInventory.Build(spec), Full);
        var bytes = OptimizerCost.Estimate(set, Full, CostSettings.QuantPeft, DeviceKind.Cuda);
        Assert.Equal(8 * spec.ParameterCount, bytes.Device);
        Assert.Equal(0, bytes.Host);
    }

    [Fact]
    public void PagedStatesLiveOnTheHostExceptTheOneBeingUpdated()
    {
        var spec = ModelPresets.Get("llama-2-7b");
        var s = Full with { Optimizer = OptimizerKind.PagedAdamW };
        var set = TrainableSet.Build(ModelInventory.Build(spec), s);
        var bytes = OptimizerCost.Estimate(set, s, CostSettings.QuantPeft, DeviceKind.Cuda);
        long smallStates = 8 * set.Tensors.Where(t => t.Elements < OptimizerCost.MinPagedSize).Sum(t => t.Elements);
        long largest = 8 * set.Tensors.Max(t => t.Elements);
        Assert.Equal(smallStates + largest, bytes.Device);
        Assert.Equal(8 * spec.ParameterCount - smallStates, bytes.Host);
    }

    [Fact]
    public void AdapterCountsFollowEachMethod()
    {
        var inv = ModelInventory.Build(ModelPresets.Get("llama-2-7b"));
        var lora = Full with { Method = TrainingMethod.Lora, Rank = 8, Targets = TargetModules.Q | TargetModules.V };
        // Llama-2-7B q and v are 4096×4096: r·(in+out) = 8·8192 per matrix, 64 matrices.
        Assert.Equal(64L * 8 * 8192, TrainableSet.Build(inv, lora).TrainableElements);
        Assert.Equal(64L * 8 * 8192 + 64L * 4096, TrainableSet.Build(inv, lora with { Method = TrainingMethod.Dora }).TrainableElements);
        Assert.Equal(64L * (8 + 4096), TrainableSet.Build(inv, lora with { Method = TrainingMethod.Osora }).TrainableElements);
        Assert.Equal(64L * 8 * 8192 + 64L * (8 + 4096), TrainableSet.Build(inv, lora with { Method = TrainingMethod.Osora }).AdapterElements);
        var vera = TrainableSet.Build(inv, lora with { Method = TrainingMethod.Vera, Rank = 256 });
        Assert.Equal(64L * (256 + 4096), vera.TrainableElements);
        Assert.Equal(64L * (256 + 4096) + 256L * 4096 * 2, vera.AdapterElements);
    }

    [Fact]
    public void LisaTrainsGammaLayersPlusEmbeddingAndHead()
    {
        var spec = ModelPresets.Get("llama-2-7b");
        var inv = ModelInventory.Build(spec);
        var set = TrainableSet.Build(inv, Full with { Method = TrainingMethod.Lisa, LisaLayers = 2 });
        long layer = (spec.ParameterCount - 2L * 32000 * 4096 - 4096) / 32;
        Assert.Equal(2 * layer + 2L * 32000 * 4096 + 4096, set.TrainableElements);
    }
}
