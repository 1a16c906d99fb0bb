using static TorchSharp.torch;

namespace QuantPeft.Optimizers.Tests;

public class AdamWTests
{
    // Hand computation (PyTorch AdamW: decay first, then the bias-corrected step),
    // lr = 0.1, β1 = 0.9, β2 = 0.999, eps = 1e-8, wd = 0.1, p0 = [1, −2].
    // Step 1, g = [0.5, −1]:
    //   decay: p = p·(1 − 0.1·0.1) = [0.99, −1.98]
    //   m = 0.1·g = [0.05, −0.1];  v = 0.001·g² = [0.00025, 0.001]
    //   m̂ = m/0.1 = [0.5, −1];  v̂ = v/0.001 = [0.25, 1];  √v̂ = [0.5, 1]
    //   N = m̂/(√v̂ + 1e-8) = [0.99999998, −0.99999999]
    //   p = [0.99 − 0.099999998, −1.98 + 0.099999999] = [0.890000002, −1.880000001]
    // Step 2, g = [0.2, 0.4]:
    //   decay: p = [0.881100002, −1.861200001]
    //   m = 0.9·[0.05, −0.1] + 0.1·[0.2, 0.4] = [0.065, −0.05]
    //   v = 0.999·[0.00025, 0.001] + 0.001·[0.04, 0.16] = [0.00028975, 0.001159]
    //   1−β1² = 0.19, 1−β2² = 0.001999
    //   m̂ = [0.342105263, −0.263157895];  v̂ = [0.144947474, 0.579789895];  √v̂ = [0.380719679, 0.761439357]
    //   N = [0.898575181, −0.345605843]
    //   p = [0.881100002 − 0.0898575181, −1.861200001 + 0.0345605843] = [0.791242484, −1.826639417]
    [Fact]
    public void TwoSteps_MatchHandComputation()
    {
        var p = TestParams.From([1f, -2f], 2);
        using var opt = OptimizerFactory.Create("adamw",
            [TestParams.Group(new ParamGroupOptions(Lr: 0.1, WeightDecay: 0.1), ("p", p))]);

        TestParams.SetGrad(p, tensor(new[] { 0.5f, -1f }));
        opt.Step();
        var after1 = TestParams.Values(p);
        Assert.Equal(0.890000002f, after1[0], 6e-7f);
        Assert.Equal(-1.880000001f, after1[1], 6e-7f);

        TestParams.SetGrad(p, tensor(new[] { 0.2f, 0.4f }));
        opt.Step();
        var after2 = TestParams.Values(p);
        Assert.Equal(0.791242484f, after2[0], 6e-7f);
        Assert.Equal(-1.826639417f, after2[1], 6e-7f);
        Assert.Equal(2, opt.StepCount);
    }

    [Fact]
    public void Bf16States_HalveTheBytes_AndStayClose()
    {
        var p32 = TestParams.Randn(1, ScalarType.Float32, 32, 32);
        var p16 = TestParams.Randn(1, ScalarType.Float32, 32, 32);
        using var a = OptimizerFactory.Create("adamw", [TestParams.Group(new ParamGroupOptions(Lr: 1e-2), ("w", p32))]);
        using var b = OptimizerFactory.Create("adamw", [TestParams.Group(new ParamGroupOptions(Lr: 1e-2), ("w", p16))],
            new OptimizerBuildOptions(StateDType: ScalarType.BFloat16));
        for (int i = 0; i < 5; i++)
        {
            var g = randn([32, 32], generator: new Generator((ulong)(100 + i)));
            TestParams.SetGrad(p32, g);
            TestParams.SetGrad(p16, g);
            a.Step();
            b.Step();
        }
        Assert.Equal(2L * 1024 * 4, a.StateBytes.Total);
        Assert.Equal(2L * 1024 * 2, b.StateBytes.Total);
        double rel = (p32 - p16).norm().item<float>() / p32.norm().item<float>();
        Assert.True(rel < 1e-2, $"relative difference {rel}");
    }

    [Fact]
    public void ParameterWithoutGradient_IsSkipped()
    {
        var p = TestParams.From([1f, 2f], 2);
        var q = TestParams.From([3f, 4f], 2);
        using var opt = OptimizerFactory.Create("adamw", [TestParams.Group(new ParamGroupOptions(Lr: 0.1), ("p", p), ("q", q))]);
        TestParams.SetGrad(p, tensor(new[] { 1f, 1f }));
        opt.Step();
        Assert.Equal([3f, 4f], TestParams.Values(q));
        Assert.NotEqual([1f, 2f], TestParams.Values(p));
    }

    [Fact]
    public void ZeroGrad_DropsGradients()
    {
        var p = TestParams.From([1f, 2f], 2);
        using var opt = OptimizerFactory.Create("adamw", [TestParams.Group(new ParamGroupOptions(), ("p", p))]);
        TestParams.SetGrad(p, tensor(new[] { 1f, 1f }));
        opt.ZeroGrad();
        Assert.Null(p.grad);
    }

    [Fact]
    public void ZeroGrad_KeepingStorage_ZeroesInPlace()
    {
        var p = TestParams.From([1f, 2f], 2);
        using var opt = OptimizerFactory.Create("adamw", [TestParams.Group(new ParamGroupOptions(), ("p", p))]);
        TestParams.SetGrad(p, tensor(new[] { 1f, 3f }));
        using var before = p.grad!;
        opt.ZeroGrad(setToNone: false);
        // The handle taken before sees the zeros: the same storage, which the next backward accumulates into.
        Assert.Equal([0f, 0f], before.data<float>().ToArray());
        using var after = p.grad!;
        Assert.Equal([0f, 0f], after.data<float>().ToArray());
    }

    [Theory]
    [InlineData("adamw")]
    [InlineData("adamw-8bit")]
    public void StateDict_RoundTrip_ContinuesIdentically(string name)
    {
        // Two optimizers: A runs 3 steps, saves, B loads A's state into a copy of A's weights;
        // both then take 2 more identical steps and must agree bit for bit.
        var pa = TestParams.Randn(3, ScalarType.Float32, 64, 80);
        using var a = OptimizerFactory.Create(name, [TestParams.Group(new ParamGroupOptions(Lr: 1e-2, WeightDecay: 0.01), ("w", pa))]);
        for (int i = 0; i < 3; i++) { TestParams.SetGrad(pa, randn([64, 80], generator: new Generator((ulong)i))); a.Step(); }

        using var saved = a.StateDict();
        var json = saved.ScalarsToJson();
        using var restored = OptimizerStateDict.FromParts(saved.Tensors.Select(t => (t.Name, t.Tensor.clone())).ToList(), json);
        var pb = new TorchSharp.Modules.Parameter(pa.detach().clone(), requires_grad: true);
        using var b = OptimizerFactory.Create(name, [TestParams.Group(new ParamGroupOptions(Lr: 1e-2, WeightDecay: 0.01), ("w", pb))]);
        b.LoadStateDict(restored);
        Assert.Equal(3, b.StepCount);
        for (int i = 3; i < 5; i++)
        {
            var g = randn([64, 80], generator: new Generator((ulong)i));
            TestParams.SetGrad(pa, g); TestParams.SetGrad(pb, g);
            a.Step(); b.Step();
        }
        Assert.True(TestParams.Same(pa, pb));
    }

    [Fact]
    public void LoadStateDict_MissingTensor_NamesIt()
    {
        var p = TestParams.From([1f, 2f], 2);
        using var opt = OptimizerFactory.Create("adamw", [TestParams.Group(new ParamGroupOptions(), ("layer.w", p))]);
        using var empty = OptimizerStateDict.FromParts([], "{\"optimizer.step\": 0}");
        var e = Assert.Throws<OptimizerConfigException>(() => opt.LoadStateDict(empty));
        Assert.Contains("layer.w.exp_avg", e.Message);
    }
}
