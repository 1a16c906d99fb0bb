using QuantPeft.Quant.Codecs;

namespace QuantPeft.Quant.Tests.LqLora;

public class NormalFloatTableTests
{
    [Fact]
    public void FourBits_ReproducesTheNf4CodeTable()
    {
        float[] nf4 = CodeTables.NormalFloat(4).ToArray();
        Assert.Equal(16, nf4.Length);
        for (int i = 0; i < 16; i++)
            Assert.True(Math.Abs(nf4[i] - CodeTables.Nf4[i]) < 1e-6, $"code {i}: {nf4[i]} vs {CodeTables.Nf4[i]}");
    }

    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(8)]
    public void KBits_HasTheAsymmetricNormalFloatShape(int bits)
    {
        float[] t = CodeTables.NormalFloat(bits).ToArray();
        int half = 1 << (bits - 1);
        Assert.Equal(1 << bits, t.Length);
        Assert.Equal(half, t.Count(v => v > 0));
        Assert.Equal(half - 1, t.Count(v => v < 0));
        Assert.Single(t, v => v == 0);
        Assert.Equal(-1f, t[0], 6);
        Assert.Equal(1f, t[^1]);
        for (int i = 1; i < t.Length; i++) Assert.True(t[i] > t[i - 1]);
    }

    [Fact]
    public void InverseNormalCdf_MatchesPublishedQuantiles()
    {
        Assert.Equal(1.959963984540054, InverseNormalCdf.Evaluate(0.975), 12);
        Assert.Equal(-2.326347874040841, InverseNormalCdf.Evaluate(0.01), 12);
        Assert.Equal(0.0, InverseNormalCdf.Evaluate(0.5), 15);
        Assert.Equal(-6.361340902404056, InverseNormalCdf.Evaluate(1e-10), 9);
        // QLoRA's normaliser Φ⁻¹(0.9677083) ≈ 1.8481 (bitsandbytes' create_normal_map).
        Assert.Equal(1.8481, InverseNormalCdf.Evaluate(0.9677083), 4);
    }
}
