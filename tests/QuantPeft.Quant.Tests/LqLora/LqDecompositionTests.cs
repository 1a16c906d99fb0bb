using QuantPeft.Quant.LqLora;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantPeft.Quant.Tests.LqLora;

[Collection("Torch")]
public class LqDecompositionTests
{
    private static readonly LqQuantConfig Nf3 = new(3, 4, SecondLevelStorage.BFloat16, 64, 16);

    // A rank-8 component with large singular values plus dense noise, seeded: the structure LQ-LoRA targets.
    private static Tensor LowRankPlusNoise(long m, long n, ulong seed)
    {
        var gen = new torch.Generator(seed);
        using var a = torch.randn([m, 8], generator: gen);
        using var b = torch.randn([8, n], generator: gen);
        using var noise = torch.randn([m, n], generator: gen);
        return a.matmul(b).mul_(0.5).add_(noise.mul_(0.2));
    }

    private static double Frobenius(Tensor t)
    {
        using var s = t.to(ScalarType.Float64).square().sum();
        return Math.Sqrt(s.item<double>());
    }

    [Fact]
    public void RandomizedSvd_IsCloseToTheOptimalRankRApproximation()
    {
        using var w = LowRankPlusNoise(96, 160, 2);
        var (l1, l2) = RandomizedSvd.Factors(w, 8, generator: new torch.Generator(1));
        using var _1 = l1; using var _2 = l2;
        var (u, s, vh) = torch.linalg.svd(w, fullMatrices: false);
        using var best = u.narrow(1, 0, 8).mul(s.narrow(0, 0, 8).unsqueeze(0)).matmul(vh.narrow(0, 0, 8));
        double optimal = Frobenius(w - best);
        double randomized = Frobenius(w - l1.matmul(l2));
        Assert.True(randomized <= optimal * 1.01, $"randomized {randomized} vs optimal {optimal}");
        Assert.Equal(new long[] { 96, 8 }, l1.shape);
        Assert.Equal(new long[] { 8, 160 }, l2.shape);
    }

    [Fact]
    public void AtTheSameBits_LqBeatsPlainQuantization()
    {
        using var w = LowRankPlusNoise(128, 256, 3);
        using var plain = LqQuantizer.FakeQuantize(w, Nf3);
        double plainError = Frobenius(w - plain);
        using var lq = LqDecomposition.Decompose(w, Nf3, rank: 8, maxIterations: 20, seed: 5);
        double lqError = Frobenius(w - lq.Quantized - lq.L1.matmul(lq.L2));
        Assert.True(lqError < 0.5 * plainError, $"LQ {lqError} vs plain {plainError}");
        Assert.Equal(lq.Error, lqError, 3);
    }

    [Fact]
    public void Error_IsNonIncreasingUntilTheStop()
    {
        using var w = LowRankPlusNoise(128, 256, 4);
        using var lq = LqDecomposition.Decompose(w, Nf3, rank: 8, maxIterations: 30, seed: 6);
        var e = lq.Errors;
        Assert.True(e.Count >= 2, "the first round cannot be the best with a low-rank component present");
        Assert.True(e[1] < e[0], $"round 2 should improve on round 1: {e[0]} → {e[1]}");
        // Every round before the last is no worse than its predecessor; the last either also is (the budget ran
        // out) or is the single increase that stopped the loop.
        for (int i = 1; i < e.Count - 1; i++) Assert.True(e[i] <= e[i - 1], $"round {i}: {e[i - 1]} → {e[i]}");
        Assert.True(e.Count == 30 || e[^1] > e[^2]);
    }

    [Fact]
    public void FisherWeights_AreTheRowAndColumnMeansOfSquaredGradients()
    {
        using var g1 = torch.tensor(new float[] { 1, 2, 3, 4 }).view(2, 2);
        using var g2 = torch.tensor(new float[] { 1, 0, 1, 0 }).view(2, 2);
        using var f = FisherWeights.FromGradients([g1, g2]);
        // F = [[2, 4], [10, 16]]
        Assert.Equal(new[] { 2f, 4f, 10f, 16f }, f.Full.view(-1).data<float>().ToArray());
        Assert.Equal(Math.Sqrt(3), f.Rows[0, 0].item<float>(), 5);
        Assert.Equal(Math.Sqrt(13), f.Rows[1, 0].item<float>(), 5);
        Assert.Equal(Math.Sqrt(6), f.Columns[0, 0].item<float>(), 5);
        Assert.Equal(Math.Sqrt(10), f.Columns[0, 1].item<float>(), 5);
    }

    [Fact]
    public void DataAware_LowersTheFisherWeightedError()
    {
        using var w = LowRankPlusNoise(128, 256, 7);
        // A few rows and columns carry most of the Fisher mass, as in real calibration data.
        var gen = new torch.Generator(8);
        using var rowScale = torch.rand([128, 1], generator: gen).pow_(4).mul_(20).add_(0.05);
        using var colScale = torch.rand([1, 256], generator: gen).pow_(4).mul_(20).add_(0.05);
        using var grads = torch.randn([4, 128, 256], generator: gen).mul_(rowScale).mul_(colScale);
        using var fisher = FisherWeights.FromGradients(Enumerable.Range(0, 4).Select(i => grads[i]));
        using var sqrtF = fisher.Full.sqrt();

        using var plain = LqDecomposition.Decompose(w, Nf3, rank: 8, maxIterations: 20, seed: 9);
        using var aware = LqDecomposition.Decompose(w, Nf3, rank: 8, maxIterations: 20, fisher: fisher, seed: 9);
        double plainWeighted = Frobenius((w - plain.Quantized - plain.L1.matmul(plain.L2)) * sqrtF);
        Assert.Equal(aware.Error, Frobenius((w - aware.Quantized - aware.L1.matmul(aware.L2)) * sqrtF), 3);
        Assert.True(aware.Error < plainWeighted, $"data-aware {aware.Error} vs plain {plainWeighted}");
    }
}
