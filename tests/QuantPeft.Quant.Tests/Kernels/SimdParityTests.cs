using QuantPeft.Quant.Codecs;
using QuantPeft.Quant.Kernels;

namespace QuantPeft.Quant.Tests.Kernels;

public class SimdParityTests
{
    public static TheoryData<FourBitType, int> FourBitCases()
    {
        var data = new TheoryData<FourBitType, int>();
        foreach (var type in new[] { FourBitType.Nf4, FourBitType.Fp4 })
            foreach (int block in new[] { 32, 64, 256, 4096 })
                data.Add(type, block);
        return data;
    }

    [Theory]
    [MemberData(nameof(FourBitCases))]
    public void Four_bit_simd_equals_reference_byte_for_byte(FourBitType type, int blockSize)
    {
        foreach (int n in CodecInputs.Sizes)
            foreach (var x in new[] { CodecInputs.Random(n, n), CodecInputs.Special(n) })
                foreach (var codec in new IBlockwiseCodec[] { SimdCodec.Instance, new SimdCodec(1) })
                    BackendParity.FourBit(ReferenceCodec.Instance, codec, x, type, blockSize);
    }

    [Theory]
    [InlineData(DynamicMap.Signed, 256)]
    [InlineData(DynamicMap.Unsigned, 256)]
    [InlineData(DynamicMap.Signed, 4096)]
    [InlineData(DynamicMap.Signed, 32)]
    public void Dynamic_simd_equals_reference_byte_for_byte(DynamicMap map, int blockSize)
    {
        foreach (int n in CodecInputs.Sizes)
            foreach (var x in new[] { CodecInputs.Random(n, n + 1), CodecInputs.Special(n) })
            {
                if (map == DynamicMap.Unsigned) for (int i = 0; i < n; i++) x[i] = MathF.Abs(x[i]);
                BackendParity.Dynamic(ReferenceCodec.Instance, SimdCodec.Instance, x, map, blockSize);
            }
    }

    [Fact]
    public void Simd_rejects_non_finite_like_the_reference()
    {
        var x = CodecInputs.Random(1000, 1);
        x[517] = float.NaN;
        var e = Assert.Throws<QuantInputException>(() =>
            SimdCodec.Instance.QuantizeFourBit(x, FourBitType.Nf4, 64, new byte[500], new float[16]));
        Assert.Contains("element 517", e.Message);
        x[517] = float.NegativeInfinity;
        e = Assert.Throws<QuantInputException>(() =>
            SimdCodec.Instance.QuantizeDynamic(x, DynamicMap.Signed, 256, new byte[1000], new float[4]));
        Assert.Contains("element 517", e.Message);
    }
}
