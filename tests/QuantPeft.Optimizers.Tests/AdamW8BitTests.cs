using TorchSharp.Modules;
using static TorchSharp.torch;

namespace QuantPeft.Optimizers.Tests;

public class AdamW8BitTests
{
    // Least squares: minimise mean((X Wᵀ − Y)²) over W (64×128 = 8192 elements, so 8-bit states) and a
    // bias (64 elements, kept 32-bit). Both optimizers start from the same weights and see the same data.
    private static (Parameter W, Parameter B, Tensor X, Tensor Y) Problem()
    {
        var gen = new Generator(42);
        var wTrue = randn([64, 128], generator: gen);
        var x = randn([256, 128], generator: gen);
        var y = x.matmul(wTrue.t()) + 0.1f * randn([256, 64], generator: gen);
        var w = new Parameter(0.1f * randn([64, 128], generator: gen), requires_grad: true);
        var b = new Parameter(zeros(64), requires_grad: true);
        return (w, b, x, y);
    }

    private static float Train(IOptimizer opt, Parameter w, Parameter b, Tensor x, Tensor y, int steps)
    {
        float loss = 0;
        for (int i = 0; i < steps; i++)
        {
            using var scope = NewDisposeScope();
            opt.ZeroGrad();
            var l = (x.matmul(w.t()) + b - y).pow(2).mean();
            l.backward();
            opt.Step();
            loss = l.item<float>();
        }
        return loss;
    }

    [Fact]
    public void Tracks32BitAdamW_OnLeastSquares_Over1000Steps()
    {
        var (w32, b32, x, y) = Problem();
        var (w8, b8, _, _) = Problem();
        var w0 = w32.detach().clone();
        var options = new ParamGroupOptions(Lr: 1e-2, WeightDecay: 1e-2);
        // The reference is 32-bit AdamW (PyTorch order: decay before the step; adamw-8bit decays after,
        // as bitsandbytes does). That order changes each step by O(lr²·wd) = 1e-6 relative, far below the
        // 8-bit quantization noise this test bounds.
        using var reference = OptimizerFactory.Create("adamw", [new ParamGroup("g", [("w", w32), ("b", b32)], options)]);
        using var eight = OptimizerFactory.Create("adamw-8bit", [new ParamGroup("g", [("w", w8), ("b", b8)], options)]);
        float loss32 = Train(reference, w32, b32, x, y, 1000);
        float loss8 = Train(eight, w8, b8, x, y, 1000);
        double deviation = (w8 - w32).norm().item<float>() / (double)w32.norm().item<float>();
        double travelled = (w32 - w0).norm().item<float>() / (double)w32.norm().item<float>();
        Console.WriteLine($"[adamw-8bit vs adamw, 1000 steps] loss32={loss32:G6} loss8={loss8:G6} relative weight deviation={deviation:G4} (weights moved {travelled:G4})");
        Assert.True(deviation < 0.02, $"relative deviation {deviation}");
        Assert.True(loss8 < 1.5 * loss32 + 1e-3, $"8-bit loss {loss8} vs 32-bit {loss32}");
    }

    [Theory]
    [InlineData(256, 32)]
    [InlineData(2048, 4)]
    public void StateBytes_AreCodesPlusAbsmaxPerBlock(int blockSize, int blocks)
    {
        // W: 64×128 = 8192 elements ≥ 4096 → per moment 8192 code bytes + 4·(8192/blockSize) absmax bytes.
        // b: 64 elements < 4096 → two f32 moments, 64·4 bytes each.
        var w = TestParams.Randn(1, ScalarType.Float32, 64, 128);
        var b = TestParams.Randn(2, ScalarType.Float32, 64);
        using var opt = OptimizerFactory.Create("adamw-8bit", [TestParams.Group(new ParamGroupOptions(), ("w", w), ("b", b))],
            new OptimizerBuildOptions(BlockSize: blockSize));
        long expected = 2 * (8192 + 4L * blocks) + 2 * 64 * 4;
        Assert.Equal(expected, opt.StateBytes.Total);
        Assert.Equal(expected, opt.StateBytes.Device); // CPU-only: the CPU is the device
        // About 2 bytes per parameter for the big matrix.
        Assert.InRange(2.0 * (8192 + 4 * blocks) / 8192, 2.0, 2.032);
    }

    [Fact]
    public void NonFiniteGradient_ZeroesMomentsAndSkipsThatElement()
    {
        var w = TestParams.Randn(5, ScalarType.Float32, 64, 128);
        using var opt = OptimizerFactory.Create("adamw-8bit", [TestParams.Group(new ParamGroupOptions(Lr: 1e-2, WeightDecay: 0.1), ("w", w))]);
        TestParams.SetGrad(w, randn([64, 128], generator: new Generator(9)));
        opt.Step();
        var before = w.detach().clone();
        var g = randn([64, 128], generator: new Generator(10));
        g[3, 5] = tensor(float.NaN);
        g[7, 1] = tensor(float.PositiveInfinity);
        TestParams.SetGrad(w, g);
        opt.Step();
        Assert.Equal(before[3, 5].item<float>(), w[3, 5].item<float>());
        Assert.Equal(before[7, 1].item<float>(), w[7, 1].item<float>());
        Assert.NotEqual(before[0, 0].item<float>(), w[0, 0].item<float>());
        using var state = opt.StateDict();
        Assert.True(state.TryGetTensor("w.exp_avg", out var mCodes));
        Assert.True(state.TryGetTensor("w.exp_avg_sq", out var vCodes));
        // Flat index 3·128+5: signed code 127 and unsigned code 0 are the maps' exact zeros.
        Assert.Equal(127, mCodes[3 * 128 + 5].item<byte>());
        Assert.Equal(0, vCodes[3 * 128 + 5].item<byte>());
        Assert.Equal(127, mCodes[7 * 128 + 1].item<byte>());
        Assert.Equal(0, vCodes[7 * 128 + 1].item<byte>());
    }

    [Fact]
    public void NonFiniteGradient_InALaterChunkOfTheCheck_IsStillCaught()
    {
        // The finiteness check runs chunk by chunk (2²⁰ elements); a NaN far into the third chunk must still zero its
        // moments and leave its element alone, while every finite element moves.
        long n = 2 * QuantPeft.Optimizers.State.Blockwise8BitStateCodec.ChunkElements + 4096;
        long bad = 2 * QuantPeft.Optimizers.State.Blockwise8BitStateCodec.ChunkElements + 1000;
        var w = TestParams.Randn(6, ScalarType.Float32, n);
        using var opt = OptimizerFactory.Create("adamw-8bit", [TestParams.Group(new ParamGroupOptions(Lr: 1e-2), ("w", w))]);
        var before = w.detach().clone();
        var g = randn([n], generator: new Generator(11));
        g[bad] = tensor(float.NaN);
        TestParams.SetGrad(w, g);
        opt.Step();
        Assert.Equal(before[bad].item<float>(), w[bad].item<float>());
        Assert.NotEqual(before[bad - 1].item<float>(), w[bad - 1].item<float>());
        Assert.NotEqual(before[0].item<float>(), w[0].item<float>());
        using var state = opt.StateDict();
        Assert.True(state.TryGetTensor("w.exp_avg", out var mCodes));
        Assert.Equal(127, mCodes[bad].item<byte>());
        Assert.NotEqual(127, mCodes[bad - 1].item<byte>());
    }

    [Fact]
    public void Bf16Parameters_AreUpdatedInTheirOwnDtype()
    {
        var w = TestParams.Randn(5, ScalarType.BFloat16, 64, 128);
        using var opt = OptimizerFactory.Create("adamw-8bit", [TestParams.Group(new ParamGroupOptions(Lr: 1e-2), ("w", w))]);
        var before = w.detach().clone();
        TestParams.SetGrad(w, randn([64, 128], generator: new Generator(3)));
        opt.Step();
        Assert.Equal(ScalarType.BFloat16, w.dtype);
        // First Adam step moves every element by ≈ lr·sign(g) (|m̂/√v̂| = 1).
        var moved = (w.detach().to(ScalarType.Float32) - before.to(ScalarType.Float32)).abs().mean().item<float>();
        Assert.InRange(moved, 0.005f, 0.02f);
    }
}
