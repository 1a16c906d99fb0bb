using QuantPeft.Trainers.Adapters;
using TorchSharp;
using static TorchSharp.torch;
using static QuantPeft.Trainers.Tests.Adapters.AdapterTestData;

namespace QuantPeft.Trainers.Tests.Adapters;

/// <summary>Bone adds one trained [r, out] block to every r-column block of W (PEFT's Bone merge, with a partial last block).</summary>
public class BoneLinearTests
{
    // W = 0 [2 out, 5 in], r = 2, block = [[1, 2], [3, 4]] (rows are r, columns out). Column c of ΔW is block row c mod 2,
    // the fifth column the first row of a padded third block: ΔW = [[1, 3, 1, 3, 1], [2, 4, 2, 4, 2]].
    [Fact]
    public void TheBlockIsAddedToEveryColumnBlockAsWorkedOutByHand()
    {
        using var layer = new BoneLinear(new DenseLinear(zeros(2, 5, dtype: ScalarType.Float64)), rank: 2, ScalarType.Float64);
        using (no_grad()) layer.Block.copy_(tensor(new double[,] { { 1, 2 }, { 3, 4 } }));
        using var x = tensor(new double[,] { { 1, 1, 1, 1, 1 }, { 1, 0, 0, 0, 0 }, { 0, 0, 0, 0, 1 }, { 0, 1, 0, 1, 0 } });
        using var y = layer.forward(x);
        // Row sums of ΔW are 9 and 14; x₂ picks column 0, x₃ column 4 (= block row 0), x₄ columns 1 and 3 (2 × block row 1).
        Assert.Equal(new double[] { 9, 14, 1, 2, 1, 2, 6, 8 }, y.data<double>().ToArray());

        using var delta = BoneLinear.Delta(layer.Block, 5);
        Assert.Equal(new float[] { 1, 3, 1, 3, 1, 2, 4, 2, 4, 2 }, delta.data<float>().ToArray());
    }

    [Fact]
    public void ItStartsAsTheBaseAndItsMergeEqualsItsForwardAndUnmergesBack()
    {
        using var w = Randn(1, ScalarType.Float64, 6, 7);
        var dense = new DenseLinear(w.clone());
        using var layer = new BoneLinear(dense, rank: 3, ScalarType.Float64);
        using var x = Randn(2, ScalarType.Float64, 4, 7);
        using (var start = layer.forward(x))
        using (var baseOut = x.matmul(w.t()))
            Assert.Equal(0.0, MaxAbsDiff(start, baseOut));   // the block starts at zero
        Assert.Equal(3 * 6, layer.TrainableParameterCount);

        using (no_grad()) layer.Block.copy_(Randn(3, ScalarType.Float64, 3, 6));
        using var adapted = layer.forward(x);
        layer.Merge();
        Assert.True(layer.Merged);
        using (var merged = layer.forward(x))
            Assert.True(MaxAbsDiff(merged, adapted) < 1e-5, $"merged forward differs by {MaxAbsDiff(merged, adapted)}");
        layer.Unmerge();
        Assert.True(MaxAbsDiff(dense.Weight, w) < 1e-5);   // the merge goes through f32, as every adapter's does
    }

    [Fact]
    public void TheRankMustBePositiveAndFitTheWeight()
    {
        Assert.Throws<AdapterException>(() => new BoneLinear(new DenseLinear(zeros(4, 3)), rank: 4));
        Assert.Throws<AdapterException>(() => new BoneLinear(new DenseLinear(zeros(4, 3)), rank: 0));
    }
}
