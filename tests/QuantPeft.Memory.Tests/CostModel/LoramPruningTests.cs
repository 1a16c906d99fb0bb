using QuantPeft.Memory.CostModel;

namespace QuantPeft.Memory.Tests.CostModel;

public class LoramPruningTests
{
    [Fact]
    public void DeepModelsKeepTheFirstFourAndLastTwoLayers()
    {
        // 8 layers: 0-3 and 6-7 stay whole, only 4 and 5 are pruned (LoRAM's released scripts).
        bool[] expected = [false, false, false, false, true, true, false, false];
        Assert.Equal(expected, Enumerable.Range(0, 8).Select(l => LoramPruning.IsPruned(l, 8)));
        Assert.Equal(80 - 6, Enumerable.Range(0, 80).Count(l => LoramPruning.IsPruned(l, 80)));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(4)]
    [InlineData(6)]
    public void ModelsNoDeeperThanTheKeptLayersArePrunedEverywhere(int layers)
    {
        // Otherwise LoRAM would prune nothing on a demo-sized model; the trainer's pruner follows the same rule.
        Assert.All(Enumerable.Range(0, layers), l => Assert.True(LoramPruning.IsPruned(l, layers)));
        Assert.False(LoramPruning.IsPruned(0, 7));
        Assert.True(LoramPruning.IsPruned(4, 7));
    }
}
