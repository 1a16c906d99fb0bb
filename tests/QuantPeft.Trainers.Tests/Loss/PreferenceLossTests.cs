using QuantPeft.Trainers.Loss;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Tests.Loss;

public class PreferenceLossTests
{
    private static Tensor T(params float[] v) => tensor(v);

    [Theory]
    [InlineData(0.1, 0.0)]
    [InlineData(2.0, 0.0)]
    [InlineData(0.5, 0.3)]
    public void DpoLossIsLn2WhenThePolicyEqualsTheReference(double beta, double smoothing)
    {
        // Policy = reference: h = 0, σ(0) = ½, so −(1 − ε)·ln ½ − ε·ln ½ = ln 2 whatever β and ε.
        using var p = T(-3.5f, -20f, -7.25f);
        using var r = T(-9f, -1f, -4f);
        using var terms = PreferenceLoss.Dpo(p, r, p, r, beta, smoothing);
        foreach (float loss in terms.Loss.data<float>().ToArray()) Assert.Equal(Math.Log(2), loss, 6);
        Assert.All(terms.RewardsChosen.data<float>().ToArray(), v => Assert.Equal(0f, v));
    }

    [Fact]
    public void DpoSigmoidAndIpoMatchHandWorkedValues()
    {
        // log π(yw) = −10, log π(yl) = −12, reference −11 for both, β = 0.5: h = (1) − (−1) = 2, βh = 1.
        // DPO: −ln σ(1) = ln(1 + e⁻¹) = 0.313261687518; with ε = 0.1: 0.9·0.313261687518 + 0.1·ln(1 + e) = 0.413261687518.
        // IPO: (2 − 1/(2·0.5))² = 1. Rewards: 0.5·(−10 + 11) = 0.5 and 0.5·(−12 + 11) = −0.5.
        using var pc = T(-10f);
        using var pr = T(-12f);
        using var rc = T(-11f);
        using var rr = T(-11f);
        using (var terms = PreferenceLoss.Dpo(pc, pr, rc, rr, 0.5))
        {
            Assert.Equal(0.313261687518, terms.Loss.item<float>(), 6);
            Assert.Equal(0.5, terms.RewardsChosen.item<float>(), 6);
            Assert.Equal(-0.5, terms.RewardsRejected.item<float>(), 6);
        }
        using (var terms = PreferenceLoss.Dpo(pc, pr, rc, rr, 0.5, 0.1)) Assert.Equal(0.413261687518, terms.Loss.item<float>(), 6);
        using (var terms = PreferenceLoss.Dpo(pc, pr, rc, rr, 0.5, kind: DpoLossKind.Ipo)) Assert.Equal(1.0, terms.Loss.item<float>(), 6);
    }

    [Fact]
    public void OrpoOddsRatioTermMatchesHandComputedOdds()
    {
        // Mean per-token likelihood 0.6 (odds 1.5) against 0.2 (odds 0.25): odds ratio 6, −ln σ(ln 6) = −ln(6/7) = ln(7/6).
        // Equal likelihoods: ratio 1, −ln σ(0) = ln 2. Reversed: −ln σ(−ln 6) = ln 7.
        using var chosen = T((float)Math.Log(0.6), (float)Math.Log(0.5), (float)Math.Log(0.2));
        using var rejected = T((float)Math.Log(0.2), (float)Math.Log(0.5), (float)Math.Log(0.6));
        var term = PreferenceLoss.OddsRatioTerm(chosen, rejected).data<float>().ToArray();
        Assert.Equal(Math.Log(7.0 / 6.0), term[0], 5);
        Assert.Equal(Math.Log(2), term[1], 5);
        Assert.Equal(Math.Log(7), term[2], 5);
        // The whole ORPO loss adds the chosen answer's NLL: −ln 0.6 + λ·ln(7/6) with λ = 0.5.
        using var terms = PreferenceLoss.Orpo(chosen, rejected, 0.5);
        Assert.Equal(-Math.Log(0.6) + 0.5 * Math.Log(7.0 / 6.0), terms.Loss.data<float>()[0], 5);
        Assert.Equal(0.5 * Math.Log(0.6), terms.RewardsChosen.data<float>()[0], 5);
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(0.2)]
    public void DpoGradientThroughATinyLmHeadMatchesTheClosedForm(double smoothing)
    {
        // A tiny "model": fixed hidden states, an LM head W (V × H) that trains. log π(y) = Σ_t log softmax(W h_t)[y_t] over
        // the labelled positions, so ∂ log π(y)/∂W = Σ_t (e_{y_t} − p_t) h_tᵀ (derived by hand, computed below in doubles),
        // and ∂L/∂h = −β[(1 − ε)σ(−βh) − εσ(βh)] with h = (log π(yw) − ref_w) − (log π(yl) − ref_l). Then
        // ∂L/∂W = ∂L/∂h · (∂ log π(yw)/∂W − ∂ log π(yl)/∂W).
        const int V = 7, H = 5, Len = 4;
        const double beta = 0.7, refW = -9.0, refL = -8.0;
        var gen = new Generator(31);
        using var hidden = randn([2, Len, H], generator: gen);
        using var weight = randn([V, H], generator: gen).requires_grad_();
        long[] labelData = [2, 6, -100, 1, -100, 0, 3, 5];   // row 0 chosen, row 1 rejected
        using var labels = tensor(labelData, [2, Len]);
        using var sums = SequenceLogProbs.Sum(hidden, weight, labels);
        using var terms = PreferenceLoss.Dpo(sums.narrow(0, 0, 1), sums.narrow(0, 1, 1), T((float)refW), T((float)refL), beta, smoothing);
        terms.Loss.sum().backward();

        double[] h = [.. hidden.to_type(ScalarType.Float64).data<double>()];
        double[] w = [.. weight.detach().to_type(ScalarType.Float64).data<double>()];
        var logp = new double[2];
        var dLogp = new double[2, V, H];
        for (int row = 0; row < 2; row++)
            for (int t = 0; t < Len; t++)
            {
                long y = labelData[row * Len + t];
                if (y < 0) continue;
                var logits = new double[V];
                for (int v = 0; v < V; v++)
                    for (int k = 0; k < H; k++) logits[v] += w[v * H + k] * h[(row * Len + t) * H + k];
                double max = logits.Max(), z = logits.Sum(l => Math.Exp(l - max));
                logp[row] += logits[y] - max - Math.Log(z);
                for (int v = 0; v < V; v++)
                {
                    double coeff = (v == y ? 1 : 0) - Math.Exp(logits[v] - max) / z;
                    for (int k = 0; k < H; k++) dLogp[row, v, k] += coeff * h[(row * Len + t) * H + k];
                }
            }
        double margin = (logp[0] - refW) - (logp[1] - refL);
        static double Sigmoid(double x) => 1 / (1 + Math.Exp(-x));
        double dLdh = -beta * ((1 - smoothing) * Sigmoid(-beta * margin) - smoothing * Sigmoid(beta * margin));
        double expectedLoss = -(1 - smoothing) * Math.Log(Sigmoid(beta * margin)) - smoothing * Math.Log(Sigmoid(-beta * margin));
        Assert.Equal(expectedLoss, terms.Loss.item<float>(), 4);
        double[] grad = [.. weight.grad!.to_type(ScalarType.Float64).data<double>()];
        for (int v = 0; v < V; v++)
            for (int k = 0; k < H; k++)
            {
                double expected = dLdh * (dLogp[0, v, k] - dLogp[1, v, k]);
                Assert.True(Math.Abs(grad[v * H + k] - expected) <= 1e-5 + 1e-4 * Math.Abs(expected), $"W[{v},{k}]: {grad[v * H + k]} vs {expected}");
            }
    }
}
