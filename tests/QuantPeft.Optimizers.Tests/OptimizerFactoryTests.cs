using QuantPeft.Memory.Planning;
using QuantPeft.Optimizers.GaLore;
using static TorchSharp.torch;

namespace QuantPeft.Optimizers.Tests;

public class OptimizerFactoryTests
{
    private static ParamGroup Group(ParamGroupOptions o) => TestParams.Group(o, ("model.w", TestParams.Randn(1, ScalarType.Float32, 6, 4)));

    [Fact]
    public void UnknownName_ListsTheKnownOnes()
    {
        var e = Assert.Throws<OptimizerConfigException>(() => OptimizerFactory.Create("adam-9bit", [Group(new ParamGroupOptions())]));
        Assert.Contains("adam-9bit", e.Message);
        foreach (var n in OptimizerFactory.Names) Assert.Contains(n, e.Message);
    }

    [Fact]
    public void EveryName_Builds()
    {
        foreach (var name in OptimizerFactory.Names)
        {
            var o = name.Contains("galore") ? new ParamGroupOptions(GaLore: new GaLoreOptions(2, 10, 0.25)) : new ParamGroupOptions();
            using var opt = OptimizerFactory.Create(name, [Group(o)]);
            Assert.Equal(name, opt.Kind);
        }
    }

    [Fact]
    public void EveryKind_BuildsUnderItsCommandLineName()
    {
        foreach (var kind in Enum.GetValues<OptimizerKind>())
        {
            var o = OptimizerFactory.IsGaLore(kind) ? new ParamGroupOptions(GaLore: new GaLoreOptions(2, 10, 0.25)) : new ParamGroupOptions();
            using var opt = OptimizerFactory.Create(kind, [Group(o)]);
            Assert.Equal(Knob.Name(kind), opt.Kind);
        }
    }

    [Fact]
    public void RankLargerThanMatrix_NamesParameterAndShape()
    {
        var e = Assert.Throws<OptimizerConfigException>(() =>
            OptimizerFactory.Create("galore", [Group(new ParamGroupOptions(GaLore: new GaLoreOptions(5, 10, 0.25)))]));
        Assert.Contains("model.w", e.Message);
        Assert.Contains("rank 5", e.Message);
        Assert.Contains("[6,4]", e.Message);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-3)]
    public void NonPositiveUpdateGap_IsRejected(int gap)
    {
        var e = Assert.Throws<OptimizerConfigException>(() => Group(new ParamGroupOptions(GaLore: new GaLoreOptions(2, gap, 0.25))));
        Assert.Contains("update_proj_gap", e.Message);
        Assert.Contains(gap.ToString(), e.Message);
    }

    [Fact]
    public void NegativeLr_IsRejected_AtBuildAndWhenScheduled()
    {
        var e = Assert.Throws<OptimizerConfigException>(() => Group(new ParamGroupOptions(Lr: -1e-3)));
        Assert.Contains("lr", e.Message);
        var g = Group(new ParamGroupOptions());
        Assert.Throws<OptimizerConfigException>(() => g.Lr = double.NaN);
    }

    [Theory]
    [InlineData(1.0, 0.999, "beta1")]
    [InlineData(-0.1, 0.999, "beta1")]
    [InlineData(0.9, 1.0, "beta2")]
    [InlineData(0.9, 1.5, "beta2")]
    public void BetasOutsideHalfOpenUnitInterval_AreRejected(double b1, double b2, string field)
    {
        var e = Assert.Throws<OptimizerConfigException>(() => Group(new ParamGroupOptions(Beta1: b1, Beta2: b2)));
        Assert.Contains(field, e.Message);
        Assert.Contains("[0, 1)", e.Message);
    }

    [Fact]
    public void GaLoreOptionsOnAdamW_AndMissingOnGaLore_AreRejected()
    {
        Assert.Throws<OptimizerConfigException>(() =>
            OptimizerFactory.Create("adamw", [Group(new ParamGroupOptions(GaLore: new GaLoreOptions(2, 10, 0.25)))]));
        var e = Assert.Throws<OptimizerConfigException>(() => OptimizerFactory.Create("galore", [Group(new ParamGroupOptions())]));
        Assert.Contains("GaLore options", e.Message);
    }

    [Fact]
    public void BadBlockSize_IsRejected()
    {
        var e = Assert.Throws<OptimizerConfigException>(() =>
            OptimizerFactory.Create("adamw-8bit", [Group(new ParamGroupOptions())], new OptimizerBuildOptions(BlockSize: 512)));
        Assert.Contains("512", e.Message);
    }

    [Fact]
    public void DuplicateParameterNames_AreRejected()
    {
        var p = TestParams.Randn(1, ScalarType.Float32, 3);
        var q = TestParams.Randn(2, ScalarType.Float32, 3);
        var e = Assert.Throws<OptimizerConfigException>(() =>
            OptimizerFactory.Create("adamw", [TestParams.Group(new ParamGroupOptions(), ("x", p), ("x", q))]));
        Assert.Contains("'x'", e.Message);
    }
}
