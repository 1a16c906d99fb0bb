using QuantPeft.Optimizers.InBackward;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace QuantPeft.Optimizers.Tests.InBackward;

public class OptimizerInBackwardTests
{
    // A 3-layer MLP written with functional linear so that each weight's use site can be wrapped.
    private static List<(string, Parameter)> Model(int seed)
    {
        var gen = new Generator((ulong)seed);
        var list = new List<(string, Parameter)>();
        long[] dims = [16, 32, 32, 8];
        for (int i = 0; i < 3; i++)
        {
            list.Add(($"l{i}.weight", new Parameter(randn([dims[i + 1], dims[i]], generator: gen) / 4f, true)));
            list.Add(($"l{i}.bias", new Parameter(zeros(dims[i + 1]), true)));
        }
        return list;
    }

    private static Tensor Loss(List<(string, Parameter)> ps, Func<Parameter, Tensor> use, Tensor x, Tensor y)
    {
        var h = x;
        for (int i = 0; i < 3; i++)
        {
            h = nn.functional.linear(h, use(ps[2 * i].Item2), use(ps[2 * i + 1].Item2));
            if (i < 2) h = nn.functional.gelu(h);
        }
        return (h - y).pow(2).mean();
    }

    [Theory]
    [InlineData("adamw")]
    [InlineData("adamw-8bit")]
    public void LayerWiseUpdates_EqualTheOrdinaryStep_BitForBit(string name)
    {
        var a = Model(1);
        var b = Model(1);
        var opts = new ParamGroupOptions(Lr: 1e-2, WeightDecay: 0.01);
        using var ordinary = OptimizerFactory.Create(name, [new ParamGroup("g", a, opts)]);
        using var layerwiseOpt = OptimizerFactory.Create(name, [new ParamGroup("g", b, opts)]);
        var inBackward = new OptimizerInBackward(layerwiseOpt);
        for (int step = 0; step < 5; step++)
        {
            using var scope = NewDisposeScope();
            var gen = new Generator((ulong)(100 + step));
            var x = randn([64, 16], generator: gen);
            var y = randn([64, 8], generator: gen);

            ordinary.ZeroGrad();
            Loss(a, p => p, x, y).backward();
            ordinary.Step();

            Loss(b, inBackward.Use, x, y).backward();
            foreach (var (n, p) in b) Assert.True(p.grad is null, $"{n} kept a gradient");
        }
        Assert.Equal(5 * b.Count, inBackward.UpdatesApplied);
        for (int i = 0; i < a.Count; i++)
            Assert.True(TestParams.Same(a[i].Item2, b[i].Item2), $"{a[i].Item1} differs");
    }

    [Fact]
    public void GradientAccumulation_IsRejected()
    {
        using var opt = OptimizerFactory.Create("adamw", [new ParamGroup("g", Model(1), new ParamGroupOptions())]);
        var e = Assert.Throws<OptimizerConfigException>(() => new OptimizerInBackward(opt, gradientAccumulationSteps: 4));
        Assert.Contains("gradient_accumulation_steps", e.Message);
        Assert.Contains("4", e.Message);
    }

    [Fact]
    public void GlobalClipping_IsRejected()
    {
        using var opt = OptimizerFactory.Create("adamw", [new ParamGroup("g", Model(1), new ParamGroupOptions())]);
        var e = Assert.Throws<OptimizerConfigException>(() => new OptimizerInBackward(opt, maxGradNorm: 1.0));
        Assert.Contains("clipping", e.Message);
    }
}
