using QuantPeft.Optimizers.GaLore;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace QuantPeft.Optimizers.Tests.GaLore;

public class GaLoreOptimizerTests
{
    private static ParamGroupOptions GaLoreGroup(int rank, int gap, double scale, double lr = 0.1, double wd = 0,
        GaLoreProjectionType type = GaLoreProjectionType.Std, NaturalGaLoreOptions? natural = null, double eps = 1e-8) =>
        new(Lr: lr, WeightDecay: wd, Eps: eps, GaLore: new GaLoreOptions(rank, gap, scale, type, natural));

    // Hand computation, W0 = ones(4×3), rank 1, α = 0.5, lr = 0.1, wd = 0.1 (after the step), eps = 1e-8, T = 2.
    // Step 1 (t = 0 → refresh): G1 = [[3,0,0],[0,2,0],[0,0,1],[0,0,0]]; m = 4 ≥ n = 3 → right projection,
    //   Q = top right singular vector = ±[1,0,0], R1 = G1 Qᵀ = ±[3,0,0,0]ᵀ (the sign cancels in back(N)).
    //   m = 0.1·R1 = [0.3,0,0,0], v = 0.001·R1² = [0.009,0,0,0]; m̂ = [3,..], v̂ = [9,..];
    //   N = 3/(3+1e-8) = 0.9999999967 in row 0; back(N) = N Q puts it at (0,0).
    //   W(0,0) = 1 − 0.1·0.5·0.9999999967 = 0.9500000002; then ×(1 − 0.01): W(0,0) = 0.9405000002, others 0.99.
    // Step 2 (t = 1, no refresh, Q kept): G2 = [[1,1,0],[0,0,0],[2,0,0],[0,0,5]] → R2 = G2 Qᵀ = [1,0,2,0]ᵀ
    //   (the 1 in column 1 and the 5 in column 2 are outside the subspace and ignored).
    //   m = 0.9·0.3 + 0.1·1 = 0.37 (row 0), 0.2 (row 2); v = 0.999·0.009 + 0.001 = 0.009991, 0.004.
    //   1−β1² = 0.19, 1−β2² = 0.001999: m̂ = 1.947368421, 1.052631579; √v̂ = 2.235620495, 1.414567248;
    //   N = 0.8710639468 (row 0), 0.7441368183 (row 2).
    //   W(0,0) = (0.9405000002 − 0.05·0.8710639468)·0.99 = 0.8879773348
    //   W(2,0) = (0.99 − 0.05·0.7441368183)·0.99 = 0.9432652275; every other entry 0.99² = 0.9801.
    [Fact]
    public void TwoSteps_OnA4x3MatrixWithRank1_MatchHandComputation()
    {
        var w = new Parameter(ones(4, 3), requires_grad: true);
        using var opt = OptimizerFactory.Create("galore", [TestParams.Group(GaLoreGroup(1, 2, 0.5, wd: 0.1), ("w", w))]);
        TestParams.SetGrad(w, tensor(new float[] { 3, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0 }).reshape(4, 3));
        opt.Step();
        var w1 = TestParams.Values(w);
        Assert.Equal(0.9405000002f, w1[0], 1e-6f);
        for (int i = 1; i < 12; i++) Assert.Equal(0.99f, w1[i], 1e-6f);

        TestParams.SetGrad(w, tensor(new float[] { 1, 1, 0, 0, 0, 0, 2, 0, 0, 0, 0, 5 }).reshape(4, 3));
        opt.Step();
        var w2 = TestParams.Values(w);
        Assert.Equal(0.8879773348f, w2[0], 1e-6f);
        Assert.Equal(0.9432652275f, w2[6], 1e-6f);
        foreach (int i in new[] { 1, 2, 3, 4, 5, 7, 8, 9, 10, 11 }) Assert.Equal(0.9801f, w2[i], 1e-6f);
    }

    [Theory]
    [InlineData(12, 8)]   // right projection
    [InlineData(8, 12)]   // left projection
    public void Update_LiesInTheProjectorSpan(long m, long n)
    {
        var w = TestParams.Randn(1, ScalarType.Float32, m, n);
        using var opt = OptimizerFactory.Create("galore", [TestParams.Group(GaLoreGroup(3, 10, 0.25, lr: 0.01), ("w", w))]);
        var rule = (GaLoreRule)opt.Rules.Single();
        for (int step = 0; step < 3; step++)
        {
            var before = w.detach().clone();
            TestParams.SetGrad(w, randn([m, n], generator: new Generator((ulong)step)));
            opt.Step();
            var delta = w.detach() - before;
            var inSpan = rule.Projector.Left is { } p ? p.matmul(p.t()).matmul(delta) : delta.matmul(rule.Projector.Right!.t()).matmul(rule.Projector.Right!);
            Assert.True(inSpan.allclose(delta, rtol: 0, atol: 1e-6), $"step {step}: update leaves the subspace");
            Assert.True(delta.abs().max().item<float>() > 1e-4);
        }
    }

    [Theory]
    [InlineData(12, 8, 12 * 3, 3 * 8)]   // right: moments 12×3, projector Q 3×8
    [InlineData(8, 12, 3 * 12, 8 * 3)]   // left: moments 3×12, projector P 8×3
    public void State_HasProjectedShapeMoments(long m, long n, long momentElements, long projectorElements)
    {
        var w = TestParams.Randn(1, ScalarType.Float32, m, n);
        var bias = TestParams.Randn(2, ScalarType.Float32, 5);
        using var opt = OptimizerFactory.Create("galore", [TestParams.Group(GaLoreGroup(3, 10, 0.25), ("w", w), ("b", bias))]);
        using var state = opt.StateDict();
        Assert.True(state.TryGetTensor("w.exp_avg", out var ea));
        Assert.Equal(momentElements, ea.numel());
        Assert.True(state.TryGetTensor("w.exp_avg_sq", out var eas));
        Assert.Equal(momentElements, eas.numel());
        // The bias (1-D) gets plain AdamW: two f32 moments of 5.
        Assert.Equal(4 * (2 * momentElements + projectorElements) + 2 * 5 * 4, opt.StateBytes.Total);
    }

    [Fact]
    public void EightBit_StoresProjectedMomentsIn8Bit()
    {
        // 256×128 with rank 32, std → right: R is 256×32 = 8192 elements (≥ 4096, so quantized).
        // Bytes: Q 32×128 f32 = 16384; per moment 8192 codes + 4·32 absmax = 8320.
        var w = TestParams.Randn(4, ScalarType.Float32, 256, 128);
        using var opt = OptimizerFactory.Create("galore-8bit", [TestParams.Group(GaLoreGroup(32, 10, 0.25, lr: 1e-3), ("w", w))]);
        Assert.Equal(16384 + 2 * 8320, opt.StateBytes.Total);
        var before = w.detach().clone();
        TestParams.SetGrad(w, randn([256, 128], generator: new Generator(8)));
        opt.Step();
        using var state = opt.StateDict();
        Assert.True(state.TryGetTensor("w.exp_avg", out var codes));
        Assert.Equal(ScalarType.Byte, codes.dtype);
        Assert.True((w.detach() - before).abs().max().item<float>() > 0);
        Assert.True(w.isfinite().all().item<bool>());
    }

    [Fact]
    public void Projector_IsRefreshedAtT0_T_2T()
    {
        var w = TestParams.Randn(1, ScalarType.Float32, 10, 6);
        using var opt = OptimizerFactory.Create("galore", [TestParams.Group(GaLoreGroup(2, 3, 0.25, lr: 1e-3), ("w", w))]);
        var rule = (GaLoreRule)opt.Rules.Single();
        var changedAt = new List<int>();
        Tensor? previous = null;
        for (int step = 0; step < 8; step++)
        {
            TestParams.SetGrad(w, randn([10, 6], generator: new Generator((ulong)(50 + step))));
            opt.Step();
            var q = rule.Projector.Right!.clone();
            if (previous is null || !TestParams.Same(previous, q)) changedAt.Add(step);
            previous = q;
        }
        Assert.Equal([0, 3, 6], changedAt);
    }

    // A seeded 2-layer MLP regression (teacher network of the same shape plus noise).
    internal static (List<(string, Parameter)> Ps, Func<Tensor> Loss) Mlp(int seed)
    {
        var gen = new Generator((ulong)seed);
        var x = randn([128, 32], generator: gen);
        var t1 = randn([64, 32], generator: gen) / 6f;
        var t2 = randn([16, 64], generator: gen) / 8f;
        var y = nn.functional.relu(x.matmul(t1.t())).matmul(t2.t());
        var gen2 = new Generator(7);
        var w1 = new Parameter(randn([64, 32], generator: gen2) / 6f, true);
        var b1 = new Parameter(zeros(64), true);
        var w2 = new Parameter(randn([16, 64], generator: gen2) / 8f, true);
        var b2 = new Parameter(zeros(16), true);
        return ([("w1", w1), ("b1", b1), ("w2", w2), ("b2", b2)],
            () => (nn.functional.relu(x.matmul(w1.t()) + b1).matmul(w2.t()) + b2 - y).pow(2).mean());
    }

    internal static float TrainMlp(string optimizer, ParamGroupOptions options, int steps)
    {
        var (ps, loss) = Mlp(3);
        using var opt = OptimizerFactory.Create(optimizer, [new ParamGroup("g", ps, options)]);
        float last = 0;
        for (int i = 0; i < steps; i++)
        {
            using var scope = NewDisposeScope();
            opt.ZeroGrad();
            var l = loss();
            l.backward();
            opt.Step();
            last = l.item<float>();
        }
        return last;
    }

    [Fact]
    public void TrainsAnMlp_CloseToAdamW()
    {
        float initial;
        { var (_, loss) = Mlp(3); initial = loss().item<float>(); }
        float adamw = TrainMlp("adamw", new ParamGroupOptions(Lr: 1e-2), 200);
        float galore = TrainMlp("galore", GaLoreGroup(16, 50, 1.0, lr: 1e-2), 200);
        Console.WriteLine($"[MLP 200 steps] initial={initial:G5} adamw={adamw:G5} galore(rank 16, T 50, α 1)={galore:G5}");
        Assert.True(galore < initial / 100, $"galore {galore} vs initial {initial}");
        Assert.True(galore < 3 * adamw, $"galore {galore} vs adamw {adamw}");
    }
}
