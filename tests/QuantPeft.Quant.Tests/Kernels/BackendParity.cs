using QuantPeft.Quant.Codecs;

namespace QuantPeft.Quant.Tests.Kernels;

/// <summary>Runs two codecs on the same input and asserts identical bytes for every output and input type.</summary>
internal static class BackendParity
{
    public static void FourBit(IBlockwiseCodec expected, IBlockwiseCodec actual, float[] x, FourBitType type, int blockSize)
    {
        int n = x.Length, blocks = BlockSizes.BlockCount(n, blockSize);
        string context = $"{actual.GetType().Name} {type} n={n} block={blockSize}";
        var (p1, a1) = (new byte[(n + 1) / 2], new float[blocks]);
        var (p2, a2) = (new byte[(n + 1) / 2], new float[blocks]);
        expected.QuantizeFourBit(x, type, blockSize, p1, a1);
        actual.QuantizeFourBit(x, type, blockSize, p2, a2);
        AssertSame(p1, p2, context + " packed");
        AssertSame(Bits(a1), Bits(a2), context + " absmax");

        var bf16 = CodecInputs.ToBFloat16(x);
        expected.QuantizeFourBit(bf16, type, blockSize, p1, a1);
        actual.QuantizeFourBit(bf16, type, blockSize, p2, a2);
        AssertSame(p1, p2, context + " packed from bf16");
        AssertSame(Bits(a1), Bits(a2), context + " absmax from bf16");

        var f16 = CodecInputs.ToHalf(x);
        expected.QuantizeFourBit(f16, type, blockSize, p1, a1);
        actual.QuantizeFourBit(f16, type, blockSize, p2, a2);
        AssertSame(p1, p2, context + " packed from f16");

        var (o1, o2) = (new float[n], new float[n]);
        expected.DequantizeFourBit(p1, a1, type, blockSize, o1);
        actual.DequantizeFourBit(p1, a1, type, blockSize, o2);
        AssertSame(Bits(o1), Bits(o2), context + " f32 decode");
        var (b1, b2) = (new ushort[n], new ushort[n]);
        expected.DequantizeFourBit(p1, a1, type, blockSize, b1);
        actual.DequantizeFourBit(p1, a1, type, blockSize, b2);
        AssertSame(b1, b2, context + " bf16 decode");
        var (h1, h2) = (new Half[n], new Half[n]);
        expected.DequantizeFourBit(p1, a1, type, blockSize, h1);
        actual.DequantizeFourBit(p1, a1, type, blockSize, h2);
        AssertSame([.. h1.Select(BitConverter.HalfToUInt16Bits)], [.. h2.Select(BitConverter.HalfToUInt16Bits)], context + " f16 decode");
    }

    public static void Dynamic(IBlockwiseCodec expected, IBlockwiseCodec actual, float[] x, DynamicMap map, int blockSize)
    {
        int n = x.Length, blocks = BlockSizes.BlockCount(n, blockSize);
        string context = $"{actual.GetType().Name} {map} n={n} block={blockSize}";
        var (c1, a1) = (new byte[n], new float[blocks]);
        var (c2, a2) = (new byte[n], new float[blocks]);
        expected.QuantizeDynamic(x, map, blockSize, c1, a1);
        actual.QuantizeDynamic(x, map, blockSize, c2, a2);
        AssertSame(c1, c2, context + " codes");
        AssertSame(Bits(a1), Bits(a2), context + " absmax");
        var (o1, o2) = (new float[n], new float[n]);
        expected.DequantizeDynamic(c1, a1, map, blockSize, o1);
        actual.DequantizeDynamic(c1, a1, map, blockSize, o2);
        AssertSame(Bits(o1), Bits(o2), context + " decode");
    }

    private static uint[] Bits(float[] values) => [.. values.Select(BitConverter.SingleToUInt32Bits)];

    private static void AssertSame<T>(T[] expected, T[] actual, string context) where T : IEquatable<T>
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            if (!expected[i].Equals(actual[i]))
                Assert.Fail($"{context}: first difference at index {i}: expected {expected[i]}, found {actual[i]}");
    }
}
