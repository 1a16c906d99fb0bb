using QuantPeft.Optimizers.GaLore;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace QuantPeft.Optimizers.Tests.GaLore;

public class NaturalGradientTransformTests
{
    [Theory]
    [InlineData(1, 0.1)]
    [InlineData(5, 0.1)]
    [InlineData(5, 1e-3)]
    public void Woodbury_EqualsExplicitInverseOfDampedFisher(int history, double damping)
    {
        // F = λI + G_h G_hᵀ with the history as the columns of G_h (k = 12): invert F directly in f64.
        var gen = new Generator(3);
        var rows = randn([history, 12], generator: gen);
        var g = randn([12], generator: gen);
        var h64 = rows.to(ScalarType.Float64);
        var fisher = eye(12, dtype: ScalarType.Float64) * damping + h64.t().matmul(h64);
        var expected = linalg.solve(fisher, g.to(ScalarType.Float64).unsqueeze(1)).squeeze(1);
        var actual = NaturalGradientTransform.WoodburyInverseFisher(rows, g, damping).to(ScalarType.Float64);
        double rel = (actual - expected).norm().item<double>() / expected.norm().item<double>();
        Assert.True(rel < 1e-4, $"relative error {rel}");
    }

    [Fact]
    public void OneVector_GivesGOverLambdaPlusNormSquared()
    {
        // F = λI + g gᵀ has g as an eigenvector with eigenvalue λ + ‖g‖².
        var g = tensor(new float[] { 1, 2, 2 }); // ‖g‖² = 9
        var result = NaturalGradientTransform.WoodburyInverseFisher(g.unsqueeze(0), g, 1.0);
        Assert.True(result.allclose(g / 10f, rtol: 1e-6, atol: 0));
    }

    [Fact]
    public void RepeatedLargeGradients_StayFiniteAndExact()
    {
        // Ten copies of one gradient with ‖g‖² = 4·10⁴ and λ = 1e-3: F = λI + 10·g gᵀ, so
        // F⁻¹g = g/(λ + 10‖g‖²) exactly. In f32 the Woodbury bracket would cancel to nothing.
        var g = full(400, 10f);
        var rows = g.unsqueeze(0).expand(10, 400);
        var result = NaturalGradientTransform.WoodburyInverseFisher(rows, g, 1e-3);
        var expected = g / (float)(1e-3 + 10 * 40000.0);
        Assert.True(result.allclose(expected, rtol: 1e-5, atol: 0));
    }

    [Fact]
    public void HugeDamping_ReducesToTheGradientOverLambda()
    {
        var gen = new Generator(4);
        var rows = randn([6, 20], generator: gen);
        var g = randn([20], generator: gen);
        var result = NaturalGradientTransform.WoodburyInverseFisher(rows, g, 1e8);
        // F⁻¹g·λ = g − G_h(…)G_hᵀg/λ: the correction is O(‖G_h‖²/λ) ≈ 1e-6 relative here.
        Assert.True((result * 1e8f).allclose(g, rtol: 1e-4, atol: 1e-5));
    }

    [Fact]
    public void NaturalGaLore_WithHugeDamping_FollowsGaLore()
    {
        // With λ → ∞ the transform is R/λ; Adam is invariant to that scale (eps made negligible), so the
        // weights must follow plain GaLore's.
        var wa = TestParams.Randn(1, ScalarType.Float32, 12, 8);
        var wb = new Parameter(wa.detach().clone(), true);
        var galoreOpts = new GaLoreOptions(3, 2, 0.5);
        using var galore = OptimizerFactory.Create("galore",
            [TestParams.Group(new ParamGroupOptions(Lr: 1e-2, Eps: 1e-30, GaLore: galoreOpts), ("w", wa))]);
        using var natural = OptimizerFactory.Create("natural-galore",
            [TestParams.Group(new ParamGroupOptions(Lr: 1e-2, Eps: 1e-30, GaLore: galoreOpts with { Natural = new NaturalGaLoreOptions(4, 1e8) }), ("w", wb))]);
        for (int i = 0; i < 5; i++)
        {
            var g = randn([12, 8], generator: new Generator((ulong)(20 + i)));
            TestParams.SetGrad(wa, g);
            TestParams.SetGrad(wb, g);
            galore.Step();
            natural.Step();
        }
        Assert.True(wa.allclose(wb, rtol: 1e-4, atol: 1e-6));
    }

    [Fact]
    public void NaturalGaLore_WithSmallDamping_DiffersFromGaLore()
    {
        // The preconditioner must actually act: with λ comparable to ‖R‖², the path changes.
        var wa = TestParams.Randn(1, ScalarType.Float32, 12, 8);
        var wb = new Parameter(wa.detach().clone(), true);
        var galoreOpts = new GaLoreOptions(3, 2, 0.5);
        using var galore = OptimizerFactory.Create("galore", [TestParams.Group(new ParamGroupOptions(Lr: 1e-2, GaLore: galoreOpts), ("w", wa))]);
        using var natural = OptimizerFactory.Create("natural-galore",
            [TestParams.Group(new ParamGroupOptions(Lr: 1e-2, GaLore: galoreOpts with { Natural = new NaturalGaLoreOptions(4, 1e-3) }), ("w", wb))]);
        for (int i = 0; i < 5; i++)
        {
            var g = randn([12, 8], generator: new Generator((ulong)(20 + i)));
            TestParams.SetGrad(wa, g); TestParams.SetGrad(wb, g);
            galore.Step(); natural.Step();
        }
        Assert.False(wa.allclose(wb, rtol: 1e-3, atol: 1e-5));
    }
}
