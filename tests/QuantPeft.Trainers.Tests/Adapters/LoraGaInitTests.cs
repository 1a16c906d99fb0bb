using QuantPeft.Memory.Planning;
using QuantPeft.Trainers.Adapters;
using QuantPeft.Trainers.Adapters.Methods;
using QuantPeft.Trainers.Model;
using QuantPeft.Trainers.Tests.Model;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Tests.Adapters;

/// <summary>
/// LoRA-GA's defining property on a tiny model: the model starts unchanged, and one SGD step on A and B changes the
/// merged weight in the direction of full fine-tuning's first step projected on the gradient's top 2r singular pairs,
/// by the paper's predicted amount −η s² c² G_2r (c = d_out^¼/√γ). G is computed here independently, by autograd on
/// the dense weights themselves.
/// </summary>
public class LoraGaInitTests
{
    private const int Rank = 2;
    private const double Alpha = 4;   // s = α/r = 2
    private const int Batches = 8;

    private static CausalLm Model(WeightFormat weights)
    {
        var spec = TinyModels.Llama();
        var model = new CausalLm(spec, new DecoderOptions { ComputeDType = ScalarType.Float32, LinearFactory = BaseWeights.Factory(weights, false, ScalarType.Float32) });
        model.LoadWeights(TinyModels.RandomCheckpoint(spec, 5));
        return model;
    }

    [Fact]
    public void OneSgdStepMovesTheMergedWeightAlongTheGradientsTopTwoRSubspaceByThePredictedAmount()
    {
        using var model = Model(WeightFormat.Bf16);
        var targets = ModelAdapters.AllLinear;
        var batches = new TokenInitBatches(model, count: Batches, rows: 2, length: 8, seed: 21);

        // Truth: ∂L/∂W of every target by autograd on the dense weights, L the mean over the 8 micro-batches.
        var dense = ProjectionProbe.Targets(model, targets).ToDictionary(t => t.Path, t => (DenseLinear)t.Base);
        foreach (var d in dense.Values) ((Parameter)d.Weight).requires_grad = true;
        for (int i = 0; i < Batches; i++) batches.Loss(i, Batches).backward();
        var g = dense.ToDictionary(kv => kv.Key, kv => kv.Value.Weight.grad!.detach().clone());
        foreach (var d in dense.Values)
        {
            ((Parameter)d.Weight).requires_grad = false;
            d.Weight.grad!.zero_();
        }

        using var ids = TinyModels.Ids(new long[,] { { 1, 5, 9, 2, 7, 3 } });
        using var before = model.Hidden(ids).detach().clone();
        var options = new LoraOptions(Rank, Alpha);
        var factors = LoraGaInit.Compute(new DataInitRequest(model, targets, options, batches));
        var adapters = ModelAdapters.Attach(model, TrainingMethod.LoraGa, options, targets, seed: 1, initFactors: factors);
        foreach (var f in factors.Values) f.Dispose();
        using (var start = model.Hidden(ids))
            Assert.True(start.sub(before).abs().max().item<float>() < 1e-5, "the model must start unchanged");

        // One SGD step of rate η on A and B over the same batches.
        const double eta = 1e-4;
        for (int i = 0; i < Batches; i++) batches.Loss(i, Batches).backward();
        double s = options.Scaling;
        foreach (var a in adapters)
        {
            var layer = (LoraGaLinear)a.Layer;
            using (no_grad())
            {
                layer.A.sub_(layer.A.grad!.mul(eta));
                layer.B.sub_(layer.B.grad!.mul(eta));
            }
            // ΔW of the merged model: s(B₁A₁ − B₀A₀).
            using var dw = layer.B.detach().matmul(layer.A.detach()).sub(layer.B0.matmul(layer.A0)).mul(s).to(ScalarType.Float64);
            var grad = g[a.ModulePath].to(ScalarType.Float64);
            var (u, sv, vh) = linalg.svd(grad, fullMatrices: false);
            var g2r = u.narrow(1, 0, 2 * Rank).mul(sv.narrow(0, 0, 2 * Rank)).matmul(vh.narrow(0, 0, 2 * Rank));
            double cosTop = Cos(dw, g2r.neg());
            Assert.True(cosTop > 0.9999, $"{a.ModulePath}: cos(ΔW, −G_2r) = {cosTop}");
            // And against the full step: cos(ΔW, −G) = ‖G_2r‖/‖G‖, G's energy in its top 2r pairs.
            double expectedFull = Math.Sqrt(sv.narrow(0, 0, 2 * Rank).square().sum().item<double>() / sv.square().sum().item<double>());
            Assert.Equal(expectedFull, Cos(dw, grad.neg()), 3);
            // Its size: η s² c² ‖G_2r‖ with c² = √d_out / γ.
            double c2 = Math.Sqrt(grad.shape[0]) / LoraGaInit.StableGamma;
            double predicted = eta * s * s * c2 * g2r.norm().item<double>();
            Assert.Equal(1.0, dw.norm().item<double>() / predicted, 2);
        }
    }

    [Fact]
    public void OnAnNf4BaseTheModelStartsUnchangedAndTheGradientIsTheDequantizedWeights()
    {
        using var model = Model(WeightFormat.Nf4);
        var targets = new[] { "q_proj", "down_proj" };
        var batches = new TokenInitBatches(model, count: 4, rows: 2, length: 8, seed: 8);
        using var ids = TinyModels.Ids(new long[,] { { 4, 1, 8, 2, 6, 3 } });
        using var before = model.Hidden(ids).detach().clone();
        var options = new LoraOptions(Rank, Alpha);
        var factors = LoraGaInit.Compute(new DataInitRequest(model, targets, options, batches));

        // Truth: the same loss on a dense model holding the dequantized weights, by autograd.
        using var dense = Model(WeightFormat.Bf16);
        // Every projection of the dense copy holds the dequantized weight, so both models compute the same function.
        var quantized = ProjectionProbe.Targets(model, ModelAdapters.AllLinear).ToDictionary(t => t.Path, t => t.Base);
        foreach (var (path, d) in ProjectionProbe.Targets(dense, ModelAdapters.AllLinear).ToDictionary(t => t.Path, t => (DenseLinear)t.Base))
        {
            using var w = quantized[path].DenseWeight(ScalarType.Float32);
            using (no_grad()) d.Weight.copy_(w);
        }
        var copies = ProjectionProbe.Targets(dense, targets).ToDictionary(t => t.Path, t => (DenseLinear)t.Base);
        foreach (var d in copies.Values) ((Parameter)d.Weight).requires_grad = true;
        var denseBatches = new TokenInitBatches(dense, count: 4, rows: 2, length: 8, seed: 8);
        for (int i = 0; i < 4; i++) denseBatches.Loss(i, 4).backward();
        foreach (var (path, d) in copies)
        {
            using var expected = LoraGaInit.Factors(d.Weight.grad!, Rank);
            // Singular vectors are defined up to sign: compare the projectors A₀ᵀA₀ and B₀B₀ᵀ.
            Assert.True(expected.First.t().matmul(expected.First).sub(factors[path].First.t().matmul(factors[path].First)).abs().max().item<float>() < 1e-3, $"{path}: A₀");
            Assert.True(expected.Second.matmul(expected.Second.t()).sub(factors[path].Second.matmul(factors[path].Second.t())).abs().max().item<float>() < 1e-3, $"{path}: B₀");
        }

        ModelAdapters.Attach(model, TrainingMethod.LoraGa, options, targets, seed: 1, initFactors: factors);
        foreach (var f in factors.Values) f.Dispose();
        using var start = model.Hidden(ids);
        Assert.True(start.sub(before).abs().max().item<float>() < 1e-5, "the quantized base is kept as it is and the offset is exact");
        Assert.All(quantized.Values, q => Assert.IsType<QuantizedBaseLinear>(q));
    }

    [Fact]
    public void TwoRMustFitTheSmallerSideOfEveryTarget()
    {
        using var model = Model(WeightFormat.Bf16);
        var batches = new TokenInitBatches(model, count: 1, rows: 1, length: 4, seed: 1);
        // k_proj is 8 × 16: 2r = 10 singular pairs do not exist.
        var e = Assert.Throws<AdapterException>(() => LoraGaInit.Compute(new DataInitRequest(model, ["k_proj"], new LoraOptions(5, 10), batches)));
        Assert.Contains("k_proj", e.Message);
    }

    private static double Cos(Tensor a, Tensor b) => a.mul(b).sum().item<double>() / (a.norm().item<double>() * b.norm().item<double>());
}
