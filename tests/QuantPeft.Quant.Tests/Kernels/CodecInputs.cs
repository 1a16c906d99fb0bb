using QuantPeft.Quant.Codecs;

namespace QuantPeft.Quant.Tests.Kernels;

/// <summary>Seeded inputs with awkward sizes and special values, shared by the backend parity tests.</summary>
internal static class CodecInputs
{
    public static readonly int[] Sizes = [1, 2, 31, 33, 63, 65, 1023, 4097, 64 * 3 + 17, 100_001];

    public static float[] Random(int n, int seed)
    {
        var rng = new Random(seed);
        var x = new float[n];
        for (int i = 0; i < n; i++)
        {
            double u1 = 1 - rng.NextDouble(), u2 = rng.NextDouble();
            x[i] = (float)(Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2) * Math.Pow(10, rng.Next(-3, 3)));
        }
        return x;
    }

    /// <summary>±0, subnormals, an all-zero block, a block of subnormals only, huge values, exact ties.</summary>
    public static float[] Special(int n)
    {
        var x = Random(n, 99);
        for (int i = 0; i < Math.Min(n, 64); i++) x[i] = 0f;                        // all-zero block(s)
        for (int i = 64; i < Math.Min(n, 128); i++) x[i] = (i % 2 == 0 ? 1 : -1) * float.Epsilon * i; // subnormal-only block
        for (int i = 128; i < Math.Min(n, 192); i++) x[i] = i % 3 == 0 ? -0f : 3e38f / (i - 126);
        for (int i = 192; i < Math.Min(n, 256); i++) x[i] = i == 192 ? 1f : CodeTables.Nf4[i % 16] / 2 * (i % 2 == 0 ? 1 : -1);
        for (int i = 256; i < n; i += 7) x[i] = i % 2 == 0 ? 1e-42f : -0f;
        return x;
    }

    public static ushort[] ToBFloat16(float[] x) => [.. x.Select(FloatBits.SingleToBFloat16)];

    public static Half[] ToHalf(float[] x) => [.. x.Select(v => (Half)Math.Clamp(v, -60000f, 60000f))];
}
