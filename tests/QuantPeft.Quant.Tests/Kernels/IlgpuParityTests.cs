using QuantPeft.Quant.Codecs;
using QuantPeft.Quant.Kernels;

namespace QuantPeft.Quant.Tests.Kernels;

/// <summary>One ILGPU CPU accelerator for the whole class: creating one compiles every kernel.</summary>
public sealed class IlgpuFixture : IDisposable
{
    public IlgpuCodec Codec { get; } = IlgpuCodec.CreateCpu();

    public void Dispose() => Codec.Dispose();
}

public class IlgpuParityTests(IlgpuFixture fixture) : IClassFixture<IlgpuFixture>
{
    // ILGPU's CPU accelerator emulates GPU threads, so the sizes stay below the SIMD test's 100k.
    private static readonly int[] Sizes = [1, 2, 31, 33, 65, 1023, 4097, 64 * 3 + 17, 20_001];

    [Theory]
    [InlineData(FourBitType.Nf4, 64)]
    [InlineData(FourBitType.Nf4, 32)]
    [InlineData(FourBitType.Nf4, 4096)]
    [InlineData(FourBitType.Fp4, 64)]
    [InlineData(FourBitType.Fp4, 256)]
    public void Four_bit_ilgpu_equals_reference_and_simd_byte_for_byte(FourBitType type, int blockSize)
    {
        foreach (int n in Sizes)
            foreach (var x in new[] { CodecInputs.Random(n, 7 * n), CodecInputs.Special(n) })
            {
                BackendParity.FourBit(ReferenceCodec.Instance, fixture.Codec, x, type, blockSize);
                BackendParity.FourBit(SimdCodec.Instance, fixture.Codec, x, type, blockSize);
            }
    }

    [Theory]
    [InlineData(DynamicMap.Signed, 256)]
    [InlineData(DynamicMap.Unsigned, 256)]
    [InlineData(DynamicMap.Signed, 4096)]
    public void Dynamic_ilgpu_equals_reference_byte_for_byte(DynamicMap map, int blockSize)
    {
        foreach (int n in Sizes)
            foreach (var x in new[] { CodecInputs.Random(n, n + 3), CodecInputs.Special(n) })
            {
                if (map == DynamicMap.Unsigned) for (int i = 0; i < n; i++) x[i] = MathF.Abs(x[i]);
                BackendParity.Dynamic(ReferenceCodec.Instance, fixture.Codec, x, map, blockSize);
            }
    }

    [Fact]
    public void Ilgpu_rejects_non_finite_with_the_element_index()
    {
        var x = CodecInputs.Random(300, 2);
        x[200] = float.PositiveInfinity;
        var e = Assert.Throws<QuantInputException>(() =>
            fixture.Codec.QuantizeFourBit(x, FourBitType.Nf4, 64, new byte[150], new float[5]));
        Assert.Contains("element 200", e.Message);
    }

    [Fact]
    public void Double_quantization_on_ilgpu_equals_the_reference()
    {
        var absmax = CodecInputs.Random(1000, 5).Select(MathF.Abs).ToArray();
        var expected = DoubleQuantization.Compress(absmax);
        var actual = DoubleQuantization.Compress(absmax, fixture.Codec);
        Assert.Equal(expected.Codes.ToArray(), actual.Codes.ToArray());
        Assert.Equal(expected.Scales.ToArray(), actual.Scales.ToArray());
        Assert.Equal(expected.Offset, actual.Offset);
    }
}
