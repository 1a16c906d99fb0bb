using QuantPeft.Memory.Planning;
using QuantPeft.Memory.Planning.Methods;

namespace QuantPeft.Memory.Tests.Planning;

public class MethodRegistryTests
{
    [Fact]
    public void EveryMethodIsRegisteredOnceUnderAUniqueNameThatParsesBack()
    {
        Assert.Equal(Enum.GetValues<TrainingMethod>(), MethodRegistry.All.Select(d => d.Method));
        Assert.Equal(MethodRegistry.All.Count, MethodRegistry.All.Select(d => d.Name).Distinct().Count());
        foreach (var d in MethodRegistry.All)
        {
            Assert.Equal(d.Method, Knob.ParseMethod(d.Name));
            Assert.Equal(d.Name, Knob.Name(d.Method));
            Assert.Same(d, MethodRegistry.Of(d.Method));
        }
    }

    [Fact]
    public void AnUnknownMethodNamesEveryRegisteredOne()
    {
        var e = Assert.Throws<PlanningException>(() => Knob.ParseMethod("ia3"));
        Assert.Equal("--method: expected one of full, lora, pissa, osora, vera, dora, lisa, galore, natural-galore, loram, bone, dylora, nlora, randlora, eva, lora-ga; found 'ia3'", e.Message);
    }

    // docs/strategies.md, "Method defaults".
    [Theory]
    [InlineData("lora", "adamw", 3e-3)]
    [InlineData("vera", "adamw", 3e-2)]
    [InlineData("osora", "adamw", 3e-2)]
    [InlineData("randlora", "adamw", 3e-2)]
    [InlineData("galore", "galore", 3e-3)]
    [InlineData("natural-galore", "natural-galore", 3e-3)]
    public void TheDescriptorCarriesTheMethodsDefaults(string method, string optimizer, double lr)
    {
        var d = MethodRegistry.Of(Knob.ParseMethod(method));
        Assert.Equal(optimizer, Knob.Name(d.ImpliedOptimizer));
        Assert.Equal(lr, d.DefaultLearningRate);
    }
}

public class BoneCostTests
{
    // Llama-2-7B q and v are 4096×4096, 64 of them: Bone trains one [r, out] block per matrix and keeps nothing frozen.
    [Fact]
    public void BoneTrainsOneRByOutBlockPerTarget()
    {
        var inv = QuantPeft.Memory.CostModel.ModelInventory.Build(QuantPeft.Memory.Presets.ModelPresets.Get("llama-2-7b"));
        var bone = new Strategy
        {
            Weights = WeightFormat.Nf4, Method = TrainingMethod.Bone, Optimizer = OptimizerKind.AdamW, Batch = 1, Rank = 64,
            Targets = TargetModules.Q | TargetModules.V,
        };
        var set = QuantPeft.Memory.CostModel.TrainableSet.Build(inv, bone);
        Assert.Equal(64L * 64 * 4096, set.TrainableElements);
        Assert.Equal(64L * 64 * 4096, set.AdapterElements);
        Assert.All(set.Tensors, t => Assert.Equal(64L * 4096, t.Elements));
        Assert.True(bone.IsAdapterMethod);
        Assert.Equal("bone r64 q,v | nf4 | adamw | b1", bone.Describe());
    }
}

public class NestedRankCostTests
{
    private static QuantPeft.Memory.CostModel.TrainableSet Set(TrainingMethod method) =>
        QuantPeft.Memory.CostModel.TrainableSet.Build(QuantPeft.Memory.CostModel.ModelInventory.Build(QuantPeft.Memory.Presets.ModelPresets.Get("llama-2-7b")),
            new Strategy { Weights = WeightFormat.Nf4, Method = method, Optimizer = OptimizerKind.AdamW, Batch = 1, Rank = 64, Targets = TargetModules.Q | TargetModules.V });

    // Llama-2-7B q and v are 4096×4096, 64 of them. DyLoRA allocates LoRA's pair at its largest rank: A [64, 4096], B [4096, 64].
    [Fact]
    public void DyloraTrainsLorasPairAtItsLargestRank()
    {
        var set = Set(TrainingMethod.Dylora);
        Assert.Equal(64L * 2 * 64 * 4096, set.TrainableElements);
        Assert.Equal(2 * 64, set.Tensors.Count);
        Assert.Equal(Set(TrainingMethod.Lora).TrainableElements, set.TrainableElements);
    }

    // NLoRA adds the intermediate M [64, 64] to each pair: 64 × (2·64·4096 + 64·64).
    [Fact]
    public void NloraTrainsAPairAndAnRByRIntermediatePerTarget()
    {
        var set = Set(TrainingMethod.Nlora);
        Assert.Equal(64L * (2 * 64 * 4096 + 64 * 64), set.TrainableElements);
        Assert.Equal(3 * 64, set.Tensors.Count);
        Assert.Equal(64, set.Tensors.Count(t => t.Elements == 64 * 64));
    }
}
