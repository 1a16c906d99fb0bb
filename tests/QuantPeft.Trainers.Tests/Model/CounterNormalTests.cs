using System.Runtime.InteropServices;
using QuantPeft.Trainers.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Tests.Model;

public class CounterNormalTests
{
    private const double Std = 0.02;

    [Fact]
    public void TheFirstElementOfSeedZeroIsSplitMix64sPublishedFirstOutput()
    {
        // SplitMix64 seeded with 0 first outputs 0xE220A8397B1DCDAF (the reference test vector); its 16-bit fields
        // 0xCDAF + 0x7B1D + 0xA839 + 0xE220 sum to 185,125, i.e. 54,055 above the mean 131,070. The float32 factor
        // is σ / √(4·(65536² − 1)/12) = 0.02 / 37,837.227...
        float scale = (float)(0.02 / Math.Sqrt(4.0 * (65536.0 * 65536.0 - 1.0) / 12.0));
        Assert.Equal(54055f * scale, CounterNormal.Value(0, 0, 0.02));
    }

    [Fact]
    public void AnySliceEqualsTheSameRangeOfTheWholeStream()
    {
        var whole = new float[5000];
        CounterNormal.Fill(77, 0, Std, whole);
        foreach (var (first, length) in new[] { (0, 1), (3, 17), (1001, 333), (4093, 907) })
        {
            var slice = new float[length];
            CounterNormal.Fill(77, first, Std, slice);
            Assert.Equal(whole.AsSpan(first, length).ToArray(), slice);
        }
        // The scalar definition agrees with the vector path at every index, including the vector-width tails.
        for (int i = 0; i < whole.Length; i += 7) Assert.Equal(CounterNormal.Value(77, i, Std), whole[i]);
    }

    [Fact]
    public void Bf16IsTheFloat32StreamRoundedToNearestEvenAsTorchRoundsIt()
    {
        const int n = 4099;
        var single = new float[n];
        CounterNormal.Fill(5, 10, Std, single);
        var bits = new ushort[n];
        CounterNormal.FillBFloat16(5, 10, Std, bits);
        using var rounded = tensor(single).to(ScalarType.BFloat16);
        Assert.Equal(MemoryMarshal.Cast<byte, ushort>(rounded.bytes).ToArray(), bits);
    }

    [Fact]
    public void AParallelTensorFillIsTheStreamElementByElementWhateverTheChunking()
    {
        // 2.5 chunks of 2^20, so tasks split the tensor and the last one is partial.
        long rows = 2560, cols = 1024;
        using var bf16 = empty([rows, cols], ScalarType.BFloat16);
        CounterNormal.Fill(bf16, 123, Std);
        var expected = new ushort[rows * cols];
        CounterNormal.FillBFloat16(123, 0, Std, expected);
        Assert.Equal(expected, MemoryMarshal.Cast<byte, ushort>(bf16.bytes).ToArray());

        using var f32 = empty([rows, cols], ScalarType.Float32);
        CounterNormal.Fill(f32, 123, Std);
        using var f64 = empty([rows, cols], ScalarType.Float64);
        CounterNormal.Fill(f64, 123, Std);
        Assert.True(f64.equal(f32.to(ScalarType.Float64)).all().item<bool>());
        Assert.True(bf16.equal(f32.to(ScalarType.BFloat16)).all().item<bool>());
    }

    [Fact]
    public void AMillionSamplesHaveTheDocumentedMomentsBoundAndTails()
    {
        const int n = 1 << 20;
        var x = new float[n];
        CounterNormal.Fill(2024, 0, Std, x);
        double sum = 0, squares = 0, max = 0;
        int beyond2Sigma = 0;
        foreach (float v in x)
        {
            sum += v;
            squares += (double)v * v;
            max = Math.Max(max, Math.Abs(v));
            if (Math.Abs(v) > 2 * Std) beyond2Sigma++;
        }
        double mean = sum / n, std = Math.Sqrt(squares / n - mean * mean);
        // Standard errors: mean σ/√n = 2e-5, std ≈ 0.07 % of σ, tail share 0.02 %; the bounds are >= 10 of them.
        Assert.InRange(mean, -2e-4, 2e-4);
        Assert.InRange(std, 0.99 * Std, 1.01 * Std);
        // Irwin–Hall(4): P(|x| > 2σ) = 2·(2 − 2/√3)^4 / 24 = 4.2546 % (a normal would give 4.550 %).
        Assert.InRange(beyond2Sigma / (double)n, 0.0405, 0.0445);
        // Bounded at 2√3 σ: the sum of four uniforms cannot leave [0, 4·65535].
        Assert.True(max <= 2 * Math.Sqrt(3) * Std * 1.0001, $"max |x| = {max}");
    }

    [Fact]
    public void DifferentSeedsGiveUnrelatedStreams()
    {
        var a = new float[100_000];
        var b = new float[100_000];
        CounterNormal.Fill(1, 0, Std, a);
        CounterNormal.Fill(2, 0, Std, b);
        double dot = 0, aa = 0, bb = 0;
        for (int i = 0; i < a.Length; i++)
        {
            dot += (double)a[i] * b[i];
            aa += (double)a[i] * a[i];
            bb += (double)b[i] * b[i];
        }
        // The correlation of independent streams has standard error 1/√n ≈ 0.003.
        Assert.InRange(dot / Math.Sqrt(aa * bb), -0.03, 0.03);
    }

    [Fact]
    public void AnIntegerTensorIsRefused()
    {
        using var t = zeros(4, ScalarType.Int32);
        Assert.Throws<ArgumentException>(() => CounterNormal.Fill(t, 0, Std));
    }
}
