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

    // Non-temporal stores need 64-byte-aligned outputs; the threshold is lowered so that every size streams.
    [Theory]
    [InlineData(FourBitType.Nf4, 64)]
    [InlineData(FourBitType.Fp4, 32)]
    [InlineData(FourBitType.Nf4, 4096)]
    public unsafe void Streaming_decode_into_aligned_memory_equals_reference(FourBitType type, int blockSize)
    {
        foreach (int n in CodecInputs.Sizes)
        {
            float[] x = CodecInputs.Random(n, n + 7);
            var packed = new byte[(n + 1) / 2];
            var absmax = new float[BlockSizes.BlockCount(n, blockSize)];
            ReferenceCodec.Instance.QuantizeFourBit(x, type, blockSize, packed, absmax);
            var f32 = new float[n];
            var bf16 = new ushort[n];
            ReferenceCodec.Instance.DequantizeFourBit(packed, absmax, type, blockSize, f32);
            ReferenceCodec.Instance.DequantizeFourBit(packed, absmax, type, blockSize, bf16);
            void* memory = System.Runtime.InteropServices.NativeMemory.AlignedAlloc((nuint)(n * 4L), 64);
            try
            {
                foreach (var codec in new[] { new SimdCodec(2, 0), new SimdCodec(4, 0) })
                {
                    var outF32 = new Span<float>(memory, n);
                    outF32.Fill(float.NaN);
                    codec.DequantizeFourBit(packed, absmax, type, blockSize, outF32);
                    Assert.True(outF32.SequenceEqual(f32), $"f32 n={n}");
                    var outBf16 = new Span<ushort>(memory, n);
                    outBf16.Fill(0xFFFF);
                    codec.DequantizeFourBit(packed, absmax, type, blockSize, outBf16);
                    Assert.True(outBf16.SequenceEqual(bf16), $"bf16 n={n}");
                }
            }
            finally
            {
                System.Runtime.InteropServices.NativeMemory.AlignedFree(memory);
            }
        }
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
