using QuantPeft.Quant.Codecs;

namespace QuantPeft.Quant.Tests.Codecs;

public class CodeTablesTests
{
    // QLoRA / bitsandbytes NF4 constants, as published (functional.py, kernels.cu).
    private static readonly double[] PublishedNf4 =
    [
        -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
        -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
        0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
        0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
    ];

    [Fact]
    public void Nf4_equals_published_constants()
    {
        Assert.Equal(16, CodeTables.Nf4.Length);
        for (int i = 0; i < 16; i++) Assert.Equal((float)PublishedNf4[i], CodeTables.Nf4[i]);
    }

    [Fact]
    public void Fp4_is_the_cuda_lut_over_12_with_sign_bit_3()
    {
        double[] magnitudes = [0, 0.0625, 8, 12, 4, 6, 2, 3];
        for (int i = 0; i < 8; i++)
        {
            Assert.Equal((float)(magnitudes[i] / 12), CodeTables.Fp4[i]);
            Assert.Equal(-(float)(magnitudes[i] / 12), CodeTables.Fp4[i | 8]);
        }
        Assert.True(float.IsNegative(CodeTables.Fp4[8])); // code 8 is −0
    }

    [Fact]
    public void Dynamic_signed_map_has_published_landmarks()
    {
        var map = CodeTables.DynamicSigned;
        Assert.Equal(256, map.Length);
        Assert.Equal(0f, map[127]);
        Assert.Equal(1f, map[255]);
        Assert.Equal(-0.99297, map[0], 5);
        float smallest = float.MaxValue;
        foreach (float v in map) if (v != 0) smallest = Math.Min(smallest, Math.Abs(v));
        Assert.InRange(smallest, 5.4e-7, 5.6e-7);
        for (int i = 1; i < 256; i++) Assert.True(map[i - 1] < map[i]);
    }

    [Fact]
    public void Dynamic_unsigned_map_starts_at_zero_and_ends_at_one()
    {
        var map = CodeTables.DynamicUnsigned;
        Assert.Equal(256, map.Length);
        Assert.Equal(0f, map[0]);
        Assert.Equal(1f, map[255]);
        for (int i = 1; i < 256; i++) Assert.True(map[i - 1] < map[i]);
    }

    [Fact]
    public void Generated_normal_float_4_reproduces_nf4()
    {
        float[] generated = CodeTables.CreateNormalFloatMap(4);
        Assert.Equal(16, generated.Length);
        for (int i = 0; i < 16; i++) Assert.True(Math.Abs(generated[i] - PublishedNf4[i]) <= 1e-7, $"index {i}: {generated[i]} vs {PublishedNf4[i]}");
    }

    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(5)]
    [InlineData(8)]
    public void Normal_float_k_has_2k_sorted_values_with_both_ends_and_zero(int bits)
    {
        var table = CodeTables.NormalFloat(bits);
        Assert.Equal(1 << bits, table.Length);
        Assert.Equal(-1f, table[0]);
        Assert.Equal(1f, table[^1]);
        Assert.Equal(0f, table[(1 << (bits - 1)) - 1]); // h−1 negatives come first
        for (int i = 1; i < table.Length; i++) Assert.True(table[i - 1] < table[i]);
    }

    [Fact]
    public void Nf2_and_nf3_match_hand_computed_quantiles()
    {
        // Independent values from Python's statistics.NormalDist().inv_cdf: Φ⁻¹(0.9677083) = 1.848130960,
        // Φ⁻¹(0.73385415) = 0.624511531, so NF2 = {−1, 0, 0.337915, 1} (the same 0.337915 as NF4[11]).
        Assert.Equal(-1f, CodeTables.Nf2[0]);
        Assert.Equal(0f, CodeTables.Nf2[1]);
        Assert.Equal(0.624511531 / 1.848130960, CodeTables.Nf2[2], 6);
        Assert.Equal(1f, CodeTables.Nf2[3]);
        // NF3 negatives: p = 0.8118055, 0.6559028 → −0.478629, −0.217142 after division.
        Assert.Equal(-0.478629160, CodeTables.Nf3[1], 6);
        Assert.Equal(-0.217141818, CodeTables.Nf3[2], 6);
    }

    [Theory]
    [InlineData(0.975, 1.959963984540054)]
    [InlineData(0.9, 1.2815515655446004)]
    [InlineData(0.999, 3.090232306167813)]
    [InlineData(1e-10, -6.361340902404056)]
    [InlineData(0.5, 0.0)]
    public void Inverse_normal_cdf_matches_reference_values(double p, double expected)
    {
        Assert.Equal(expected, InverseNormalCdf.Evaluate(p), 12);
    }
}
