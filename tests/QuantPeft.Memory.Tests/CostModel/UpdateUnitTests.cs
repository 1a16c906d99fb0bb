using QuantPeft.Memory.CostModel;

namespace QuantPeft.Memory.Tests.CostModel;

public class UpdateUnitTests
{
    [Fact]
    public void TheUnitsOutsideTheLayersAreDistinctFromEveryLayerAndEachOther()
    {
        UpdateUnit[] outside = [UpdateUnit.Embedding, UpdateUnit.LmHead, UpdateUnit.FinalNorm];
        Assert.Equal(3, outside.Distinct().Count());
        Assert.All(outside, u => Assert.False(u.IsLayer));
        for (int layer = 0; layer < 80; layer++)
        {
            Assert.True(UpdateUnit.Layer(layer).IsLayer);
            Assert.DoesNotContain(UpdateUnit.Layer(layer), outside);
        }
    }

    [Fact]
    public void ALayerIndexConvertsToThatLayerAndANegativeOneIsRejected()
    {
        UpdateUnit seven = 7;
        Assert.Equal(UpdateUnit.Layer(7), seven);
        Assert.NotEqual(UpdateUnit.Layer(6), seven);
        Assert.Equal("layer 7", seven.ToString());
        Assert.Throws<ArgumentOutOfRangeException>(() => UpdateUnit.Layer(-2));
        Assert.Throws<ArgumentOutOfRangeException>(() => { UpdateUnit u = -1; });
    }
}
