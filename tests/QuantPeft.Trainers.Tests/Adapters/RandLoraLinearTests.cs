using QuantPeft.Memory.Planning;
using QuantPeft.Trainers.Adapters;
using QuantPeft.Trainers.Adapters.Methods;
using QuantPeft.Trainers.Model;
using QuantPeft.Trainers.Tests.Model;
using TorchSharp;
using static TorchSharp.torch;
using static QuantPeft.Trainers.Tests.Adapters.AdapterTestData;

namespace QuantPeft.Trainers.Tests.Adapters;

/// <summary>
/// RandLoRA (Albert et al., 2025): ΔW = s Σ_{i=1..n} B_i Λ_i A Γ_i over frozen shared random bases, n = ⌈min(d_in, d_out) / r⌉,
/// with only the diagonal Λ_i (r) and Γ_i (min) trained; PEFT's RANDLORA layout of the bases and of λ, γ.
/// </summary>
public class RandLoraLinearTests
{
    private static RandLoraBases Bases(int rank, long maxIn, long maxOut, double[] a, double[] b)
    {
        var bases = new RandLoraBases(rank, maxIn, maxOut, seed: 0, ScalarType.Float64);
        using (no_grad())
        {
            using var ta = tensor(a).view(bases.A.shape);
            using var tb = tensor(b).view(bases.B.shape);
            bases.A.copy_(ta);
            bases.B.copy_(tb);
        }
        return bases;
    }

    // r = 1, so n = min = 2 bases and B_i is column i of B: A = [1, 2], B_1 = [1, 0, 1]ᵀ, B_2 = [0, 1, 1]ᵀ, Λ = (2, 3),
    // Γ_1 = diag(1, 1), Γ_2 = diag(1, −1), s = α / r = 1:
    // ΔW = 2·[1, 0, 1]ᵀ[1, 2] + 3·[0, 1, 1]ᵀ[1, −2] = [[2, 4], [3, −6], [5, −2]] for the 3 × 2 layer, its transpose for 2 × 3.
    [Theory]
    [InlineData(2, 3)]
    [InlineData(3, 2)]
    public void TheUpdateIsTheSumOfScaledBaseTermsWorkedOutByHand(int inFeatures, int outFeatures)
    {
        using var bases = Bases(1, 3, 2, [1, 2], [1, 0, 0, 1, 1, 1]);   // B [3, 2, 1]: row o holds (B_1[o], B_2[o])
        using var layer = new RandLoraLinear(new DenseLinear(zeros(outFeatures, inFeatures, dtype: ScalarType.Float64)), bases, alpha: 1);
        using (no_grad())
        {
            layer.Lambda.copy_(tensor(new double[,] { { 2, 3 } }));
            layer.Gamma.copy_(tensor(new double[,] { { 1, 1 }, { 1, -1 } }));
        }
        double[] tall = [2, 4, 3, -6, 5, -2];
        double[] expected = inFeatures == 2 ? tall : [2, 3, 5, 4, -6, -2];
        using var delta = layer.Delta();
        Assert.Equal(expected, delta.to(ScalarType.Float64).data<double>().ToArray());
        using var eye = torch.eye(inFeatures, dtype: ScalarType.Float64);
        using var y = layer.forward(eye);   // row j is ΔW's column j
        using var yt = y.t();
        Assert.Equal(expected, yt.contiguous().data<double>().ToArray());
    }

    // PEFT pairs row k·n + i of the scaled A with column k·n + i of B read as [max, n·r] (r = 2 here, so the pairing
    // matters). Expected values: PEFT's get_scaled_bases / get_delta_weight run under PyTorch (f64) on these tensors.
    [Fact]
    public void ItPairsTheBasesAsPeftDoes()
    {
        using var bases = Bases(2, 5, 3, [1, 2, -1, 0.5, -1, 3], [.. Enumerable.Range(1, 20).Select(v => v / 10.0)]);
        double[] tall = [-0.275, 0.425, -0.975, -0.625, 1.425, -2.6, -0.975, 2.425, -4.225, -1.325, 3.425, -5.85, -1.675, 4.425, -7.475];
        foreach (var (inF, outF) in new[] { (3, 5), (5, 3) })
        {
            using var layer = new RandLoraLinear(new DenseLinear(zeros(outF, inF, dtype: ScalarType.Float64)), bases, alpha: 1);   // s = 1 / 2
            using (no_grad())
            {
                layer.Lambda.copy_(tensor(new double[,] { { 1, 2 }, { -1, 0.5 } }));
                layer.Gamma.copy_(tensor(new double[,] { { 1, 0.5, 2 }, { -1, 1, 0.25 } }));
            }
            using var delta = layer.Delta();
            using var peft = tensor(tall).view(5, 3);
            using var expected = inF == 3 ? peft.clone() : peft.t().contiguous();
            Assert.True(MaxAbsDiff(delta.to(ScalarType.Float64), expected) < 1e-12, $"{outF}×{inF}: differs by {MaxAbsDiff(delta.to(ScalarType.Float64), expected)}");
        }
    }

    // The defining property: n = ⌈min / r⌉ rank-r terms reach rank min(d_in, d_out), where a LoRA with the same number of
    // trained values has rank ⌊n(r + min) / (d_in + d_out)⌋.
    [Theory]
    [InlineData(16, 12, 3)]
    [InlineData(12, 16, 5)]
    public void TheUpdateIsFullRankWhereALoraOfTheSameSizeIsNot(int inFeatures, int outFeatures, int rank)
    {
        using var bases = new RandLoraBases(rank, inFeatures, outFeatures, seed: 7, ScalarType.Float64);
        using var layer = new RandLoraLinear(new DenseLinear(zeros(outFeatures, inFeatures, dtype: ScalarType.Float64)), bases, alpha: rank);
        using (no_grad())
        {
            using var l = Randn(1, ScalarType.Float64, layer.Lambda.shape);
            using var g = Randn(2, ScalarType.Float64, layer.Gamma.shape);
            layer.Lambda.copy_(l);
            layer.Gamma.copy_(g);
        }
        int min = Math.Min(inFeatures, outFeatures), n = (min + rank - 1) / rank;
        Assert.Equal(new long[] { rank, n }, layer.Lambda.shape);
        Assert.Equal(new long[] { n, min }, layer.Gamma.shape);
        Assert.Equal((long)n * (rank + min), layer.TrainableParameterCount);   // the paper's n·(r + min)
        using var delta = layer.Delta().to(ScalarType.Float64);
        Assert.Equal(min, linalg.matrix_rank(delta).item<long>());
        Assert.True(n * (rank + min) / (inFeatures + outFeatures) < min);

        // One base term alone (Λ zero but for base i) has rank r at most.
        using (no_grad()) layer.Lambda.narrow(1, 1, n - 1).zero_();
        using var one = layer.Delta().to(ScalarType.Float64);
        Assert.Equal(rank, linalg.matrix_rank(one).item<long>());
    }

    [Fact]
    public void ItStartsAtZeroWithPeftsInitialScalingsAndItsMergeEqualsItsForward()
    {
        using var bases = new RandLoraBases(3, 9, 7, seed: 2, ScalarType.Float64);
        using var w = Randn(1, ScalarType.Float64, 7, 9);
        var dense = new DenseLinear(w.clone());
        using var layer = new RandLoraLinear(dense, bases, alpha: 60);
        using var x = Randn(2, ScalarType.Float64, 2, 4, 9);
        using (var start = layer.forward(x))
        using (var baseOut = x.matmul(w.t()))
            Assert.Equal(0.0, MaxAbsDiff(start, baseOut));
        Assert.Equal(0.0, MaxAbs(layer.Lambda));
        using (var ninth = full_like(layer.Gamma, 1.0 / 9)) Assert.Equal(0.0, MaxAbsDiff(layer.Gamma, ninth));
        Assert.Equal(20.0, layer.Scaling);

        using (no_grad())
        {
            using var l = Randn(3, ScalarType.Float64, layer.Lambda.shape);
            layer.Lambda.copy_(l);
        }
        using var adapted = layer.forward(x);
        using (var delta = layer.Delta().to(ScalarType.Float64))
        using (var explicitOut = x.matmul(w.add(delta).t()))
            Assert.True(MaxAbsDiff(adapted, explicitOut) < 1e-10);
        layer.Merge();
        using (var merged = layer.forward(x))
            Assert.True(MaxAbsDiff(merged, adapted) < 1e-5, $"merged forward differs by {MaxAbsDiff(merged, adapted)}");
        layer.Unmerge();
        Assert.True(MaxAbsDiff(dense.Weight, w) < 1e-5);
    }

    // The custom backward (which keeps only the input, or Bᵀx, and rebuilds the scaled bases) against autograd through
    // the explicit update written as the paper's sum.
    [Theory]
    [InlineData(6, 10)]
    [InlineData(10, 6)]
    public void ItsGradientsEqualAutogradThroughTheExplicitSum(int inFeatures, int outFeatures)
    {
        const int rank = 2;
        using var bases = new RandLoraBases(rank, inFeatures, outFeatures, seed: 4, ScalarType.Float64);
        using var layer = new RandLoraLinear(new DenseLinear(zeros(outFeatures, inFeatures, dtype: ScalarType.Float64)), bases, alpha: 3);
        using (no_grad())
        {
            using var l = Randn(1, ScalarType.Float64, layer.Lambda.shape);
            using var g = Randn(2, ScalarType.Float64, layer.Gamma.shape);
            layer.Lambda.copy_(l);
            layer.Gamma.copy_(g);
        }
        using var x = Randn(3, ScalarType.Float64, 5, inFeatures).requires_grad_(true);
        using var c = Randn(4, ScalarType.Float64, 5, outFeatures);
        using (var loss = layer.forward(x).mul(c).sum()) loss.backward();

        using var lambda = layer.Lambda.detach().clone().requires_grad_(true);
        using var gamma = layer.Gamma.detach().clone().requires_grad_(true);
        using var x2 = x.detach().clone().requires_grad_(true);
        int min = Math.Min(inFeatures, outFeatures), max = Math.Max(inFeatures, outFeatures), n = (min + rank - 1) / rank;
        using var bFlat = bases.B.reshape(bases.B.shape[0], -1);
        var sum = zeros(max, min, dtype: ScalarType.Float64);
        for (int i = 0; i < n; i++)
            for (int k = 0; k < rank; k++)
            {
                // Term (i, k): B's flattened column k·n + i times λ[k, i] · (A[k] ⊙ γ[i]).
                var column = bFlat.narrow(0, 0, max).select(1, k * n + i).unsqueeze(1);
                var row = bases.A.select(0, k).select(0, 0).narrow(0, 0, min).mul(gamma.select(0, i)).mul(lambda[k, i]).unsqueeze(0);
                sum = sum.add(column.matmul(row));
            }
        var deltaW = (inFeatures <= outFeatures ? sum : sum.t()).mul(3.0 / rank);
        using (var loss = x2.matmul(deltaW.t()).mul(c).sum()) loss.backward();
        Assert.True(MaxAbsDiff(layer.Lambda.grad!, lambda.grad!) < 1e-10);
        Assert.True(MaxAbsDiff(layer.Gamma.grad!, gamma.grad!) < 1e-10);
        Assert.True(MaxAbsDiff(x.grad!, x2.grad!) < 1e-10);
    }

    // PyTorch (torch.Generator().manual_seed(0), uniform_ on f16 as kaiming_uniform_(a = √5) draws, then x / x.std()) for
    // r = 2 and a widest target of d_out 3, d_in 5: PEFT's _init_randlora_A_randlora_B. Values printed by PyTorch.
    [Fact]
    public void TheSeedRebuildsPeftsBasesAsPyTorchDrawsThem()
    {
        using var bases = new RandLoraBases(2, maxInFeatures: 5, maxOutFeatures: 3, seed: 0);
        Assert.Equal(new long[] { 2, 1, 3 }, bases.A.shape);
        Assert.Equal(new long[] { 5, 2, 2 }, bases.B.shape);
        Assert.Equal(new float[] { -0.8310546875f, -1.1357421875f, 1.537109375f, 0.46923828125f, -0.4619140625f, -0.6376953125f }, bases.A.data<float>().ToArray());
        Assert.Equal(new float[]
        {
            1.1884765625f, 0.603515625f, -0.712890625f, 0.666015625f, 0.01512908935546875f, 1.2158203125f, -1.193359375f, -0.5361328125f,
            -1.255859375f, 1.267578125f, 0.81689453125f, -0.79541015625f, 1.3515625f, -0.71484375f, -1.5751953125f, -1.4296875f,
            0.11773681640625f, 0.79345703125f, 1.0087890625f, -0.294189453125f,
        }, bases.B.data<float>().ToArray());
        using var again = new RandLoraBases(2, 5, 3, seed: 0);
        using var other = new RandLoraBases(2, 5, 3, seed: 1);
        Assert.Equal(0.0, MaxAbsDiff(bases.B, again.B));
        Assert.True(MaxAbsDiff(bases.B, other.B) > 0.1);
    }

    // Every target of a model shares one pair of bases, sized by the widest input and output (24 × 24 on the tiny Llama:
    // min = max = 24, n = ⌈24 / 4⌉ = 6), and each layer trains n·(r + min) of its own values.
    [Fact]
    public void EveryLayerSharesTheBasesTheSeedBuilds()
    {
        var spec = TinyModels.Llama();
        using var model = new CausalLm(spec, new DecoderOptions { ComputeDType = ScalarType.Float32, LinearFactory = BaseWeights.Factory(WeightFormat.Bf16, false, ScalarType.Float32) });
        model.LoadWeights(TinyModels.RandomCheckpoint(spec, 5));
        var descriptor = AdapterRegistry.Of(TrainingMethod.RandLora);
        using var shared = (RandLoraBases)descriptor.CreateShared(model, ModelAdapters.AllLinear, 4, seed: 11)!;
        Assert.Equal(new long[] { 4, 1, 24 }, shared.A.shape);
        Assert.Equal(new long[] { 24, 6, 4 }, shared.B.shape);
        var adapters = ModelAdapters.Attach(model, TrainingMethod.RandLora, new LoraOptions(4, 8), ModelAdapters.AllLinear, seed: 1, shared);
        foreach (var a in adapters)
        {
            var layer = Assert.IsType<RandLoraLinear>(a.Layer);
            Assert.Same(shared, layer.SharedBases);
            long min = Math.Min(layer.BaseLayer.InFeatures, layer.BaseLayer.OutFeatures);
            long n = (min + 3) / 4;
            Assert.Equal(n * (4 + min), layer.TrainableParameterCount);
        }
        using var rebuilt = new RandLoraBases(4, 24, 24, seed: 11);
        Assert.Equal(0.0, MaxAbsDiff(shared.A, rebuilt.A));
        Assert.Equal(0.0, MaxAbsDiff(shared.B, rebuilt.B));
    }

    [Fact]
    public void BasesSmallerThanTheLayerAreRefused()
    {
        using var bases = new RandLoraBases(2, 4, 4, seed: 0);
        var error = Assert.Throws<AdapterException>(() => new RandLoraLinear(new DenseLinear(zeros(6, 4)), bases, alpha: 2));
        Assert.Contains("smaller than the 6×4 layer", error.Message);
    }
}
