using QuantPeft.Quant.Codecs;
using QuantPeft.Quant.Kernels;

namespace QuantPeft.Quant.Tests.Codecs;

public class QuantizationQualityTests
{
    private const int N = 1 << 20;

    private static float[] Gaussian(int n, int seed)
    {
        var rng = new Random(seed);
        var x = new float[n];
        for (int i = 0; i < n; i++)
            x[i] = (float)(Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble()));
        return x;
    }

    private static double Mse(float[] a, float[] b)
    {
        double sum = 0;
        for (int i = 0; i < a.Length; i++) sum += (double)(a[i] - b[i]) * (a[i] - b[i]);
        return sum / a.Length;
    }

    private static double RoundTripMse(float[] x, FourBitType type, bool doubleQuant)
    {
        var q = FourBitBufferQuantizer.Quantize(x, [x.Length], type, 64, doubleQuant);
        var y = new float[x.Length];
        FourBitBufferQuantizer.Dequantize(q, y);
        return Mse(x, y);
    }

    // Baseline: symmetric uniform int4 with the same per-64 absmax, levels −7..7 · absmax/7, round half away from zero.
    private static double Int4Mse(float[] x)
    {
        var y = new float[x.Length];
        for (int start = 0; start < x.Length; start += 64)
        {
            float absmax = 0;
            for (int i = start; i < start + 64; i++) absmax = Math.Max(absmax, Math.Abs(x[i]));
            for (int i = start; i < start + 64; i++)
                y[i] = (float)(Math.Clamp(Math.Round(x[i] / absmax * 7, MidpointRounding.AwayFromZero), -7, 7) * absmax / 7);
        }
        return Mse(x, y);
    }

    [Fact]
    public void Nf4_beats_fp4_and_int4_on_normal_weights_and_double_quant_costs_almost_nothing()
    {
        float[] x = Gaussian(N, 2024);
        double nf4 = RoundTripMse(x, FourBitType.Nf4, doubleQuant: false);
        double nf4Dq = RoundTripMse(x, FourBitType.Nf4, doubleQuant: true);
        double fp4 = RoundTripMse(x, FourBitType.Fp4, doubleQuant: false);
        double int4 = Int4Mse(x);
        Console.WriteLine($"MSE on N(0,1), 2^20 values, block 64: NF4 {nf4:E4}, NF4+DQ {nf4Dq:E4}, FP4 {fp4:E4}, int4 {int4:E4}");
        Assert.True(nf4 < fp4, $"NF4 {nf4} should beat FP4 {fp4}");
        Assert.True(nf4 < int4, $"NF4 {nf4} should beat int4 {int4}");
        // The nested 8-bit absmax moves each scale by at most half a dynamic-map step (≤ ~0.4% of the block's
        // centred absmax range); bound the MSE change at 1% relative.
        Assert.True(Math.Abs(nf4Dq - nf4) / nf4 < 0.01, $"DQ changed MSE from {nf4} to {nf4Dq}");
    }

    [Fact]
    public void Bits_per_parameter_from_stored_bytes_match_qlora()
    {
        float[] x = Gaussian(4096 * 1024, 7);
        var dq = FourBitBufferQuantizer.Quantize(x, [4096, 1024]);
        var plain = FourBitBufferQuantizer.Quantize(x, [4096, 1024], doubleQuant: false);
        double dqBits = dq.StoredBytes * 8.0 / x.Length;
        double plainBits = plain.StoredBytes * 8.0 / x.Length;
        Console.WriteLine($"bits/param: NF4+DQ {dqBits:F6}, NF4 {plainBits:F6}, saving {plainBits - dqBits:F6}");
        Assert.Equal(4 + 8.0 / 64 + 32.0 / (64 * 256), dqBits, 4);   // 4.126953 (+ the 4-byte offset)
        Assert.Equal(4.5, plainBits, 6);
        Assert.Equal(0.373, plainBits - dqBits, 3);
        Assert.Equal(dq.StoredBytes, StorageSize.FourBitBytes(x.Length, 64, doubleQuant: true));
        Assert.Equal(plain.StoredBytes, StorageSize.FourBitBytes(x.Length, 64, doubleQuant: false));
    }

    [Fact]
    public void Double_quantization_hand_example()
    {
        // absmax [1, 3]: offset 2, centred [−1, 1], nested absmax 1; −1 → code 0 (−0.99297, there is no −1), 1 → 255.
        var nested = DoubleQuantization.Compress([1f, 3f]);
        Assert.Equal(2f, nested.Offset);
        Assert.Equal([1f], nested.Scales.ToArray());
        Assert.Equal(new byte[] { 0, 255 }, nested.Codes.ToArray());
        var recovered = new float[2];
        DoubleQuantization.Recover(nested, recovered);
        Assert.Equal(CodeTables.DynamicSigned[0] + 2f, recovered[0]);
        Assert.Equal(3f, recovered[1]);
    }

    [Fact]
    public void Double_quantized_absmax_is_within_half_a_code_step()
    {
        float[] x = Gaussian(64 * 3000, 9);
        var plain = FourBitBufferQuantizer.Quantize(x, [x.Length], doubleQuant: false);
        var dq = FourBitBufferQuantizer.Quantize(x, [x.Length], doubleQuant: true);
        float[] exact = plain.State.GetAbsMax(), approx = dq.State.GetAbsMax();
        var scales = dq.State.Nested!.Scales;
        for (int i = 0; i < exact.Length; i++)
            Assert.True(Math.Abs(exact[i] - approx[i]) <= scales[i / 256] * 0.0225 + 1e-6, $"block {i}: {exact[i]} vs {approx[i]}");
        Assert.Equal(plain.Packed, dq.Packed); // DQ only touches the statistics, never the codes
    }
}
