using QuantPeft.Trainers.Adapters;
using TorchSharp;
using static TorchSharp.torch;
using static QuantPeft.Trainers.Tests.Adapters.AdapterTestData;

namespace QuantPeft.Trainers.Tests.Adapters;

public class LoraLinearTests
{
    [Fact]
    public void FreshAdapterHasZeroBAndLeavesTheOutputUnchanged()
    {
        using var w = Randn(1, ScalarType.Float32, 12, 10);
        using var bias = Randn(2, ScalarType.Float32, 12);
        using var x = Randn(3, ScalarType.Float32, 4, 10);
        using var reference = nn.functional.linear(x, w, bias);
        using var layer = new LoraLinear(new DenseLinear(w.clone(), bias.clone()), new LoraOptions(rank: 4, alpha: 8));
        using var y = layer.forward(x);
        Assert.Equal(0.0, MaxAbs(layer.B));
        Assert.True(MaxAbs(layer.A) > 0);
        Assert.Equal(0.0, MaxAbsDiff(y, reference));
    }

    [Theory]
    [InlineData(false, 8.0 / 4)]
    [InlineData(true, 8.0 / 2)] // rsLoRA: α/√r with r = 4
    public void OutputIsBasePlusScaledLowRankUpdate(bool rs, double expectedScaling)
    {
        using var w = Randn(1, ScalarType.Float64, 6, 5);
        using var x = Randn(3, ScalarType.Float64, 3, 5);
        using var a = Randn(4, ScalarType.Float64, 4, 5);
        using var b = Randn(5, ScalarType.Float64, 6, 4);
        var options = new LoraOptions(4, 8, useRsLora: rs);
        Assert.Equal(expectedScaling, options.Scaling, 12);
        using var layer = new LoraLinear(new DenseLinear(w.clone()), options, ScalarType.Float64, a, b);
        using var y = layer.forward(x);
        // Independent formulation: W' = W + s·B·A, y = x W'ᵀ.
        using var wPrime = w.add(b.matmul(a).mul(expectedScaling));
        using var expected = x.matmul(wPrime.t());
        Assert.True(MaxAbsDiff(y, expected) < 1e-12);
        Assert.Equal(4 * 5 + 6 * 4, layer.TrainableParameterCount);
    }

    [Fact]
    public void MergeGivesTheSameOutputAndUnmergeRestoresTheBaseInBf16Tolerance()
    {
        using var w = Randn(1, ScalarType.BFloat16, 32, 16);
        using var original = w.clone();
        using var x = Randn(3, ScalarType.BFloat16, 5, 16);
        var dense = new DenseLinear(w.clone());
        using var layer = new LoraLinear(dense, new LoraOptions(4, 16), ScalarType.Float32, Randn(4, ScalarType.Float32, 4, 16), Randn(5, ScalarType.Float32, 32, 4));
        using var before = layer.forward(x);
        layer.Merge();
        using var merged = layer.forward(x);
        // bf16 rounding of the merged weight: relative error ≈ 2⁻⁸ of the output magnitude.
        Assert.True(MaxAbsDiff(before, merged) < 0.02 * MaxAbs(before), $"merged output differs by {MaxAbsDiff(before, merged)}");
        layer.Unmerge();
        Assert.True(MaxAbsDiff(dense.Weight, original) < 0.02 * MaxAbs(original) + 0.05);
        Assert.False(layer.Merged);
    }

    [Fact]
    public void OnlyAdapterParametersAreTrainable()
    {
        using var w = Randn(1, ScalarType.Float32, 8, 8);
        using var layer = new LoraLinear(new DenseLinear(w.clone()), new LoraOptions(2, 4));
        var trainable = layer.named_parameters().Where(p => p.parameter.requires_grad).Select(p => p.name).OrderBy(n => n).ToArray();
        Assert.Equal(new[] { "lora.lora_A.weight", "lora.lora_B.weight" }, trainable);
    }

    [Theory]
    [InlineData(0, 8, 0.0)]
    [InlineData(-1, 8, 0.0)]
    [InlineData(4, 0, 0.0)]
    [InlineData(4, 8, 1.0)]
    [InlineData(4, 8, -0.1)]
    public void BadOptionsAreRejectedWithTheValue(int rank, double alpha, double dropout)
    {
        var e = Assert.Throws<AdapterException>(() => new LoraOptions(rank, alpha, dropout));
        Assert.Matches("rank|alpha|dropout", e.Message);
    }

    [Fact]
    public void RankLargerThanTheLayerIsRejected()
    {
        using var w = Randn(1, ScalarType.Float32, 4, 3);
        var e = Assert.Throws<AdapterException>(() => new LoraLinear(new DenseLinear(w.clone()), new LoraOptions(5, 8)));
        Assert.Contains("rank 5", e.Message);
    }

    [Fact]
    public void SavedTensorsLoadBackAndShapeMismatchIsNamed()
    {
        using var w = Randn(1, ScalarType.Float32, 6, 5);
        using var x = Randn(2, ScalarType.Float32, 3, 5);
        using var trained = new LoraLinear(new DenseLinear(w.clone()), new LoraOptions(2, 4), ScalarType.Float32, Randn(3, ScalarType.Float32, 2, 5), Randn(4, ScalarType.Float32, 6, 2));
        using var fresh = new LoraLinear(new DenseLinear(w.clone()), new LoraOptions(2, 4));
        fresh.LoadAdapterTensors(trained.AdapterTensors());
        using var y1 = trained.forward(x);
        using var y2 = fresh.forward(x);
        Assert.Equal(0.0, MaxAbsDiff(y1, y2));
        using var wrong = torch.zeros(3, 5);
        var bad = new Dictionary<string, Tensor>(trained.AdapterTensors()) { ["lora_A.weight"] = wrong };
        var e = Assert.Throws<AdapterException>(() => fresh.LoadAdapterTensors(bad));
        Assert.Contains("lora_A.weight", e.Message);
    }
}
