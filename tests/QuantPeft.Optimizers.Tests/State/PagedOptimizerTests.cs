using QuantPeft.Memory.Paging;
using QuantPeft.Optimizers.State;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace QuantPeft.Optimizers.Tests.State;

public class PagedOptimizerTests
{
    private static List<(string, Parameter)> Model(int seed) =>
        [.. Enumerable.Range(0, 4).Select(i => ($"layer{i}.weight", TestParams.Randn(seed + i, ScalarType.Float32, 64, 128))),
         ("head.bias", TestParams.Randn(seed + 9, ScalarType.Float32, 64))];

    [Theory]
    // 8-bit: one 64×128 weight's state = 2·(8192 + 4·32) = 16640 bytes; budget 20000 holds one weight's state.
    [InlineData("adamw-8bit", "paged-adamw-8bit", 20_000)]
    // f32: one weight's state = 2·8192·4 = 65536 bytes.
    [InlineData("adamw", "paged-adamw", 70_000)]
    public void PagedEqualsUnpaged_BitForBit_UnderATinyBudget(string plain, string paged, long budget)
    {
        var a = Model(11);
        var b = Model(11);
        var opts = new ParamGroupOptions(Lr: 1e-2, WeightDecay: 0.01);
        using var reference = OptimizerFactory.Create(plain, [new ParamGroup("g", a, opts)]);
        using var pagedOpt = OptimizerFactory.Create(paged, [new ParamGroup("g", b, opts)],
            new OptimizerBuildOptions(Pager: new PagerOptions(budget, CPU, PageBacking.MappedFile)));
        var pager = ((PagedStateAllocator)pagedOpt.Allocator).Pager;
        for (int step = 0; step < 6; step++)
        {
            for (int i = 0; i < a.Count; i++)
            {
                var g = randn(a[i].Item2.shape, generator: new Generator((ulong)(1000 * step + i)));
                TestParams.SetGrad(a[i].Item2, g);
                TestParams.SetGrad(b[i].Item2, g);
            }
            reference.Step();
            pagedOpt.Step();
            Assert.True(pager.ResidentBytes <= budget + pager.LargestPageBytes);
            Assert.True(pagedOpt.StateBytes.Device <= budget + pager.LargestPageBytes);
        }
        for (int i = 0; i < a.Count; i++)
            Assert.True(TestParams.Same(a[i].Item2, b[i].Item2), $"{a[i].Item1} differs");
        Assert.True(pager.PeakResidentBytes <= budget + pager.LargestPageBytes, $"peak {pager.PeakResidentBytes}");
        Assert.True(pager.Evictions > 0, "the budget was meant to force eviction");
        // The backing files hold the whole state (the same bytes as the unpaged one); the device holds a part.
        Assert.Equal(reference.StateBytes.Total, pagedOpt.StateBytes.Disk);
        Assert.True(pagedOpt.StateBytes.Device < reference.StateBytes.Total);

        using var sa = reference.StateDict();
        using var sb = pagedOpt.StateDict();
        foreach (var (name, t) in sa.Tensors)
        {
            Assert.True(sb.TryGetTensor(name, out var u), name);
            Assert.True(TestParams.Same(t, u), $"state {name} differs");
        }
    }

    [Fact]
    public void BudgetSmallerThanOneParametersState_NamesTheState()
    {
        var a = Model(1);
        using var opt = OptimizerFactory.Create("paged-adamw-8bit", [new ParamGroup("g", a, new ParamGroupOptions())],
            new OptimizerBuildOptions(Pager: new PagerOptions(10_000, CPU, PageBacking.MappedFile)));
        foreach (var (_, p) in a) TestParams.SetGrad(p, ones_like(p));
        var e = Assert.Throws<QuantPeft.Memory.Paging.PagerBudgetException>(() => opt.Step());
        Assert.Contains("exp_avg", e.Message);
    }
}
