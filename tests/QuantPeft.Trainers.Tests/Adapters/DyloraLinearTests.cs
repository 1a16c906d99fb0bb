using QuantPeft.Trainers.Adapters;
using TorchSharp;
using static TorchSharp.torch;
using static QuantPeft.Trainers.Tests.Adapters.AdapterTestData;

namespace QuantPeft.Trainers.Tests.Adapters;

/// <summary>
/// DyLoRA's defining property: the adapter at rank b is the LoRA of rank b (scaling α/b) made of the first b rows of A and
/// columns of B, whatever the later components hold; a training step at rank b trains only the b-th row and column.
/// </summary>
public class DyloraLinearTests
{
    private const int R = 4;
    private const double Alpha = 6;

    private static DyloraLinear Layer(Tensor w)
    {
        var layer = new DyloraLinear(new DenseLinear(w.clone()), new LoraOptions(R, Alpha), frozen: true, ScalarType.Float64);
        using (no_grad())
        {
            layer.A.copy_(Randn(11, ScalarType.Float64, R, 7));
            layer.B.copy_(Randn(12, ScalarType.Float64, 5, R));
        }
        return layer;
    }

    // W = 0 [2 out, 2 in], r = 2, α = 2: A = [[1, 2], [3, 4]], B = [[5, 7], [1, 1]]. At b = 1: (2/1)·[5; 1]·[1, 2] =
    // [[10, 20], [2, 4]]; at b = 2: (2/2)·B·A = [[26, 38], [4, 6]]. With x = [1, 1]: [30, 6] and [64, 10].
    [Fact]
    public void TheUpdateAtEachRankIsTheHandWorkedTruncatedLora()
    {
        using var layer = new DyloraLinear(new DenseLinear(zeros(2, 2, dtype: ScalarType.Float64)), new LoraOptions(2, 2), dtype: ScalarType.Float64);
        using (no_grad())
        {
            layer.A.copy_(tensor(new double[,] { { 1, 2 }, { 3, 4 } }));
            layer.B.copy_(tensor(new double[,] { { 5, 7 }, { 1, 1 } }));
        }
        layer.eval();
        using var x = tensor(new double[,] { { 1, 1 } });
        layer.InferenceRank = 1;
        using (var y = layer.forward(x)) Assert.Equal(new double[] { 30, 6 }, y.data<double>().ToArray());
        using (var d = layer.DeltaAt(1)) Assert.Equal(new float[] { 10, 20, 2, 4 }, d.data<float>().ToArray());
        layer.InferenceRank = 2;
        using (var y = layer.forward(x)) Assert.Equal(new double[] { 64, 10 }, y.data<double>().ToArray());
        using (var d = layer.DeltaAt(2)) Assert.Equal(new float[] { 26, 38, 4, 6 }, d.data<float>().ToArray());
    }

    [Fact]
    public void TruncatedToBItIsTheLoraOfRankBBuiltFromTheFirstBRowsAndColumns()
    {
        using var w = Randn(1, ScalarType.Float64, 5, 7);
        using var layer = Layer(w);
        layer.eval();
        using var x = Randn(2, ScalarType.Float64, 3, 7);
        for (int b = 1; b <= R; b++)
        {
            using var lora = new LoraLinear(new DenseLinear(w.clone()), new LoraOptions(b, Alpha), ScalarType.Float64,
                initA: layer.A.detach().narrow(0, 0, b), initB: layer.B.detach().narrow(1, 0, b));
            layer.InferenceRank = b;
            using var expected = lora.forward(x);
            using var actual = layer.forward(x);
            Assert.True(MaxAbsDiff(actual, expected) < 1e-12, $"rank {b}");

            // The same rank in training mode (dropout 0) computes the same function.
            layer.train();
            layer.TrainingRank = b;
            using (var trained = layer.forward(x)) Assert.True(MaxAbsDiff(trained, expected) < 1e-12, $"training at rank {b}");
            layer.eval();
        }
    }

    [Fact]
    public void TruncationAtKUsesOnlyTheFirstKComponents()
    {
        using var w = Randn(1, ScalarType.Float64, 5, 7);
        using var layer = Layer(w);
        layer.eval();
        layer.InferenceRank = 2;
        using var x = Randn(2, ScalarType.Float64, 3, 7);
        using var before = layer.forward(x);
        using (no_grad())
        {
            layer.A.narrow(0, 2, R - 2).fill_(double.NaN);
            layer.B.narrow(1, 2, R - 2).fill_(double.NaN);
        }
        using var after = layer.forward(x);
        Assert.Equal(0.0, MaxAbsDiff(before, after));
    }

    [Fact]
    public void AStepAtRankBGivesAGradientOnlyToTheBthRowOfAAndColumnOfB()
    {
        using var w = Randn(1, ScalarType.Float64, 5, 7);
        using var layer = Layer(w);
        layer.train();
        layer.TrainingRank = 3;
        using var x = Randn(2, ScalarType.Float64, 3, 7);
        using (var loss = layer.forward(x).square().sum()) loss.backward();
        using var ga = layer.A.grad!.abs().sum([1L]);
        using var gb = layer.B.grad!.abs().sum([0L]);
        double[] rowsA = ga.data<double>().ToArray(), colsB = gb.data<double>().ToArray();
        for (int i = 0; i < R; i++)
        {
            Assert.True(i == 2 ? rowsA[i] > 0 : rowsA[i] == 0, $"A row {i}: {rowsA[i]}");
            Assert.True(i == 2 ? colsB[i] > 0 : colsB[i] == 0, $"B column {i}: {colsB[i]}");
        }
    }

    [Fact]
    public void MergedAtKItComputesTheRankKForwardAndUnmergesBack()
    {
        using var w = Randn(1, ScalarType.Float64, 5, 7);
        var dense = new DenseLinear(w.clone());
        using var layer = new DyloraLinear(dense, new LoraOptions(R, Alpha), dtype: ScalarType.Float64);
        using (no_grad()) layer.B.copy_(Randn(12, ScalarType.Float64, 5, R));
        layer.eval();
        layer.InferenceRank = 3;
        using var x = Randn(2, ScalarType.Float64, 3, 7);
        using var unmerged = layer.forward(x);
        layer.Merge();
        using (var merged = dense.forward(x)) Assert.True(MaxAbsDiff(merged, unmerged) < 1e-6);
        Assert.Throws<AdapterException>(() => layer.InferenceRank = 2);
        layer.Unmerge();
        using (var back = dense.forward(x))
        using (var baseOut = x.matmul(w.t()))
            Assert.True(MaxAbsDiff(back, baseOut) < 1e-6);
    }

    [Fact]
    public void ARankOutsideOneToRIsRefused()
    {
        using var w = Randn(1, ScalarType.Float64, 5, 7);
        using var layer = Layer(w);
        Assert.Contains("outside [1, 4]", Assert.Throws<AdapterException>(() => layer.InferenceRank = 0).Message);
        Assert.Contains("outside [1, 4]", Assert.Throws<AdapterException>(() => layer.TrainingRank = 5).Message);
        Assert.Throws<AdapterException>(() => new DyloraLinear(new DenseLinear(w.clone()), new LoraOptions(R, Alpha, useRsLora: true)));
    }
}
