using QuantPeft.Formats.HuggingFace;
using QuantPeft.Trainers.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Tests.Model;

public class RotaryEmbeddingTests
{
    private static ModelSpec Spec(int hidden, int heads, double theta, RopeScaling? scaling = null) => new()
    {
        ModelType = "llama", NumLayers = 1, HiddenSize = hidden, IntermediateSize = 8, NumHeads = heads,
        NumKvHeads = heads, VocabSize = 8, RopeTheta = theta, RopeScaling = scaling,
    };

    [Fact]
    public void Position1_Theta10000_HeadDim4_RotatesPairsIAndIPlusHalf()
    {
        // head_dim 4: inv_freq = [10000^0, 10000^(-2/4)] = [1, 0.01]; at position 1 the angles are 1 and 0.01 rad.
        // Pairs are (x0, x2) and (x1, x3) ("rotate half"). For x = [1, 2, 3, 4]:
        //   x0' = 1·cos 1 − 3·sin 1       = 0.540302306 − 2.524412954 = −1.984110648
        //   x2' = 3·cos 1 + 1·sin 1       = 1.620906918 + 0.841470985 =  2.462377903
        //   x1' = 2·cos .01 − 4·sin .01   = 1.999900001 − 0.039999333 =  1.959900668
        //   x3' = 4·cos .01 + 2·sin .01   = 3.999800002 + 0.019999667 =  4.019799668
        var inv = RotaryEmbedding.InverseFrequencies(Spec(hidden: 4, heads: 1, theta: 10000));
        Assert.Equal(new[] { 1f, 0.01f }, inv);

        var (cos, sin) = RotaryEmbedding.CosSin(inv, seqLen: 2, ScalarType.Float32, CPU);
        using var x = tensor(new float[] { 9, 9, 9, 9, 1, 2, 3, 4 }, [1, 1, 2, 4]);   // (B, heads, T, D); position 0 then 1
        using var rotated = RotaryEmbedding.Apply(x, cos, sin);
        var r = rotated.data<float>().ToArray();
        Assert.Equal(new float[] { 9, 9, 9, 9 }, r[..4]);                 // position 0: identity
        float[] expected = [-1.984110648f, 1.959900668f, 2.462377903f, 4.019799668f];
        for (int i = 0; i < 4; i++)
            Assert.Equal(expected[i], r[4 + i], 5);
        cos.Dispose();
        sin.Dispose();
    }

    [Fact]
    public void Llama3Scaling_MatchesHandComputedFrequencies()
    {
        // head_dim 8, θ = 10000: inv_freq = [1, 0.1, 0.01, 0.001], wavelengths 2π/f = [6.28, 62.8, 628.3, 6283.2].
        // factor 8, low 1, high 4, original context 1024: low-freq wavelength 1024, high-freq wavelength 256.
        //   6.28, 62.8 < 256           → unchanged: 1, 0.1
        //   6283.2 > 1024              → divided by 8: 0.000125
        //   256 ≤ 628.3 ≤ 1024 (blend) → s = (1024/628.3185 − 1)/(4 − 1) = 0.2099155,
        //                                f = (1 − s)·0.01/8 + s·0.01 = 0.0030867610
        var scaling = new RopeScaling("llama3", Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPositionEmbeddings: 1024);
        var inv = RotaryEmbedding.InverseFrequencies(Spec(hidden: 8, heads: 1, theta: 10000, scaling));
        double[] expected = [1, 0.1, 0.0030867610, 0.000125];
        for (int i = 0; i < 4; i++)
            Assert.True(Math.Abs(inv[i] - expected[i]) <= 1e-6 * expected[i], $"inv_freq[{i}] = {inv[i]}, expected {expected[i]}");
    }

    [Fact]
    public void LinearScaling_DividesEveryFrequency()
    {
        var inv = RotaryEmbedding.InverseFrequencies(Spec(4, 1, 10000, new RopeScaling("linear", Factor: 4)));
        Assert.Equal(new[] { 0.25f, 0.0025f }, inv);
    }

    [Fact]
    public void UnknownScalingType_IsRejectedNamingIt()
    {
        var ex = Assert.Throws<ModelException>(() => RotaryEmbedding.InverseFrequencies(Spec(4, 1, 10000, new RopeScaling("yarn", 4))));
        Assert.Contains("rope_scaling", ex.Message);
        Assert.Contains("yarn", ex.Message);
    }
}
