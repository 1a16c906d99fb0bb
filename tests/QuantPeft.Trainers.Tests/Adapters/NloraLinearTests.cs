using QuantPeft.Trainers.Adapters;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static QuantPeft.Trainers.Tests.Adapters.AdapterTestData;

namespace QuantPeft.Trainers.Tests.Adapters;

/// <summary>
/// NLoRA: the Nyström initialisation W ≈ C·U⁺·R from W's first r columns and rows (hand-worked cases), the model it
/// starts from is the pretrained one (residual base + s·B·M·A = W), and the intermediate M is an r×r trained factor.
/// </summary>
public class NloraLinearTests
{
    private static readonly double[,] W3 = { { 2, 4, 6 }, { 1, 3, 5 }, { 4, 0, 2 } };

    private static double[] Flat(Tensor t) => t.to(ScalarType.Float64).data<double>().ToArray();

    // r = 1: C = [2; 1; 4], U = [2], R = [2, 4, 6]; C·U⁻¹·R = [[2, 4, 6], [1, 2, 3], [4, 8, 12]], so the residual is
    // [[0, 0, 0], [0, 1, 2], [0, −8, −10]]. With s = 2, M = U⁻¹/s = 1/4.
    [Fact]
    public void RankOneIsTheHandWorkedNystromApproximation()
    {
        using var w = tensor(W3);
        var (residual, a, b, m) = NystromInit.Nlora(w, 1, scaling: 2);
        using (residual) using (a) using (b) using (m)
        {
            Assert.Equal(new double[] { 0, 0, 0, 0, 1, 2, 0, -8, -10 }, Flat(residual));
            Assert.Equal(new double[] { 2, 4, 6 }, Flat(a));
            Assert.Equal(new double[] { 2, 1, 4 }, Flat(b));
            Assert.Equal(new double[] { 0.25 }, Flat(m));
            Assert.Equal(ScalarType.Float64, residual.dtype);
        }
    }

    // r = 2: U = [[2, 4], [1, 3]], U⁻¹ = [[1.5, −2], [−0.5, 1]]; C·U⁻¹ = [[1, 0], [0, 1], [6, −8]], and times
    // R = [[2, 4, 6], [1, 3, 5]] the last row is 6·[2, 4, 6] − 8·[1, 3, 5] = [4, 0, −4]: the residual is 6 in the corner only.
    [Fact]
    public void RankTwoIsTheHandWorkedNystromApproximation()
    {
        using var w = tensor(W3);
        var (residual, a, b, m) = NystromInit.Nlora(w, 2, scaling: 1);
        using (residual) using (a) using (b) using (m)
        {
            double[] res = Flat(residual), expected = [0, 0, 0, 0, 0, 0, 0, 0, 6];
            for (int i = 0; i < 9; i++) Assert.Equal(expected[i], res[i], 10);
            double[] mm = Flat(m), inverse = [1.5, -2, -0.5, 1];
            for (int i = 0; i < 4; i++) Assert.Equal(inverse[i], mm[i], 6);
            Assert.Equal(new double[] { 2, 4, 6, 1, 3, 5 }, Flat(a));
            Assert.Equal(new double[] { 2, 4, 1, 3, 4, 0 }, Flat(b));
        }
    }

    [Fact]
    public void AWeightOfRankRIsTakenWhollyIntoTheAdapter()
    {
        using var p = Randn(1, ScalarType.Float64, 6, 2);
        using var q = Randn(2, ScalarType.Float64, 2, 5);
        using var w = p.matmul(q);
        var (residual, a, b, m) = NystromInit.Nlora(w, 2, scaling: 0.5);
        using (residual) using (a) using (b) using (m)
            Assert.True(MaxAbs(residual) < 1e-5 * MaxAbs(w), $"residual {MaxAbs(residual)}");   // the factors are f32
    }

    [Fact]
    public void TheModelItStartsFromIsThePretrainedOne()
    {
        using var w = Randn(3, ScalarType.Float64, 6, 5);
        var options = new LoraOptions(3, 12);
        var (residual, a, b, m) = NystromInit.Nlora(w, 3, options.Scaling);
        using (a) using (b) using (m)
        {
            using var layer = new NloraLinear(new DenseLinear(residual), options, a, b, m, ScalarType.Float64);
            using var x = Randn(4, ScalarType.Float64, 2, 5);
            using var y = layer.forward(x);
            using var expected = x.matmul(w.t());
            Assert.True(MaxAbsDiff(y, expected) < 1e-5, $"{MaxAbsDiff(y, expected)}");
            // The adapter is not zero: it carries the approximation.
            using var baseOnly = layer.BaseLayer is DenseLinear d ? d.forward(x) : throw new InvalidOperationException();
            Assert.True(MaxAbsDiff(baseOnly, expected) > 0.1);
        }
    }

    [Fact]
    public void TheIntermediateMatrixIsAnRByRTrainedFactorWithItsOwnGradient()
    {
        using var w = Randn(3, ScalarType.Float64, 6, 5);
        var options = new LoraOptions(3, 3);
        var (residual, a, b, m) = NystromInit.Nlora(w, 3, options.Scaling);
        using (a) using (b) using (m)
        {
            using var layer = new NloraLinear(new DenseLinear(residual), options, a, b, m, ScalarType.Float64);
            Assert.Equal(3 * 5 + 3 * 3 + 6 * 3, layer.TrainableParameterCount);
            var m0 = layer.M.detach().clone();
            using var x = Randn(4, ScalarType.Float64, 2, 5);
            using (var loss = layer.forward(x).square().sum()) loss.backward();
            Assert.True(layer.M is Parameter { requires_grad: true });
            Assert.Equal([3L, 3L], layer.M.grad!.shape);
            // dL/dM = s·Bᵀ·G·(A·x)ᵀ summed over rows, with G = 2y: checked against that closed form.
            using var y = layer.forward(x).detach();
            using var g = y.mul(2);
            using var ax = x.matmul(layer.A.detach().t());
            using var expected = layer.B.detach().t().matmul(g.t()).matmul(ax).mul(options.Scaling);
            Assert.True(MaxAbsDiff(layer.M.grad!, expected) < 1e-9 * MaxAbs(expected));
            using var sgd = optim.SGD(layer.parameters().Where(p => p.requires_grad), 0.1);
            sgd.step();
            Assert.True(MaxAbsDiff(layer.M, m0) > 0);
        }
    }

    // The PEFT form: on the ORIGINAL W, the rank-2r LoRA A = [A; A₀], B = [B·M, −B₀·M₀] with α doubled is the trained layer.
    [Fact]
    public void FoldingMIntoBGivesTheRank2rLoraOnTheOriginalWeight()
    {
        using var w = Randn(3, ScalarType.Float64, 6, 5);
        var options = new LoraOptions(2, 4);
        var (residual, a, b, m) = NystromInit.Nlora(w, 2, options.Scaling);
        using (a) using (b) using (m)
        {
            using var layer = new NloraLinear(new DenseLinear(residual), options, a, b, m, ScalarType.Float64);
            var (a0, bm0) = (a.to(ScalarType.Float64), b.to(ScalarType.Float64).matmul(m.to(ScalarType.Float64)));
            using (no_grad())
            {
                layer.A.add_(Randn(5, ScalarType.Float64, 2, 5).mul(0.1));
                layer.M.add_(Randn(6, ScalarType.Float64, 2, 2).mul(0.1));
                layer.B.add_(Randn(7, ScalarType.Float64, 6, 2).mul(0.1));
            }
            using var bm = layer.B.detach().matmul(layer.M.detach());
            using var lora = new LoraLinear(new DenseLinear(w.clone()), new LoraOptions(4, 8), ScalarType.Float64,
                initA: cat([layer.A.detach(), a0], 0), initB: cat([bm, bm0.neg()], 1));
            using var x = Randn(4, ScalarType.Float64, 3, 5);
            using var expected = layer.forward(x);
            using var actual = lora.forward(x);
            Assert.True(MaxAbsDiff(actual, expected) < 1e-9, $"{MaxAbsDiff(actual, expected)}");
            var (fa, fb) = layer.FoldedPair();
            using (fa) using (fb)
            {
                Assert.True(MaxAbsDiff(fa, layer.A) < 1e-6);
                Assert.True(MaxAbsDiff(fb, bm) < 1e-5);
            }
        }
    }
}
