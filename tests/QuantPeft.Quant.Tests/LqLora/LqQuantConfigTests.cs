using QuantPeft.Quant.LqLora;
using QuantPeft.Quant.Torch;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantPeft.Quant.Tests.LqLora;

[Collection("Torch")]
public class LqQuantConfigTests
{
    [Fact]
    public void SearchSpace_Has432DistinctConfigs()
    {
        Assert.Equal(432, LqQuantConfig.SearchSpace.Count);
        Assert.Equal(432, LqQuantConfig.SearchSpace.Distinct().Count());
    }

    [Fact]
    public void BitsPerParameter_FollowsTheFormula()
    {
        Assert.Equal(4 + 8.0 / 64 + 32.0 / (64 * 256), LqQuantConfig.Nf4DoubleQuant.BitsPerParameter, 12);
        var c = new LqQuantConfig(3, 2, SecondLevelStorage.BFloat16, 16, 16);
        Assert.Equal(3 + 2.0 / 16 + 16.0 / 256, c.BitsPerParameter, 12);
        foreach (var s in LqQuantConfig.SearchSpace)
            Assert.Equal(s.BitsPerParameter * LqQuantConfig.GroupElements, s.BitsPerGroup, 6);
    }

    [Fact]
    public void FakeQuantize_KeepsValuesThatAreAlreadyCodesUnderUnitScales()
    {
        // Every block of 16 holds ±1, so all first-level scales are 1: offset = 1, s2 = 0 → scales stay 1 and
        // each value must come back as itself when it already is an NF4 code.
        var nf4 = CodeTables.NormalFloat(4).ToArray();
        var values = new float[256];
        for (int i = 0; i < values.Length; i++) values[i] = i % 16 == 0 ? (i % 32 == 0 ? 1f : -1f) : nf4[(i * 7) % 16];
        using var w = torch.tensor(values).view(16, 16);
        using var q = LqQuantizer.FakeQuantize(w, new LqQuantConfig(4, 8, SecondLevelStorage.Float32, 16, 16));
        Assert.True(TensorAssert.Identical(w, q));
    }

    [Fact]
    public void FakeQuantize_ErrorFallsWithMoreBits()
    {
        var gen = new torch.Generator(4);
        using var w = torch.randn([64, 256], generator: gen);
        double Error(int b)
        {
            using var q = LqQuantizer.FakeQuantize(w, new LqQuantConfig(b, 8, SecondLevelStorage.Float32, 64, 16));
            using var e = (w - q).square().sum();
            return e.item<float>();
        }
        double e2 = Error(2), e3 = Error(3), e4 = Error(4), e8 = Error(8);
        Assert.True(e2 > e3 && e3 > e4 && e4 > e8, $"{e2} {e3} {e4} {e8}");
    }

    [Fact]
    public void FakeQuantize_RejectsSizesThatAreNotWholeGroups()
    {
        using var w = torch.randn([10, 100]);
        var e = Assert.Throws<QuantInputException>(() => LqQuantizer.FakeQuantize(w, LqQuantConfig.Nf4DoubleQuant, "q_proj"));
        Assert.Contains("q_proj", e.Message);
        Assert.Contains("16384", e.Message);
    }
}
