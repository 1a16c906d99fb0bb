using QuantPeft.Quant.Codecs;

namespace QuantPeft.Quant.Tests.Codecs;

public class ReferenceCodecTests
{
    private static readonly ReferenceCodec Codec = ReferenceCodec.Instance;

    private static (byte[] Packed, float[] AbsMax) Quantize4(float[] x, FourBitType type, int blockSize = 32)
    {
        var packed = new byte[(x.Length + 1) / 2];
        var absmax = new float[BlockSizes.BlockCount(x.Length, blockSize)];
        Codec.QuantizeFourBit(x, type, blockSize, packed, absmax);
        return (packed, absmax);
    }

    [Fact]
    public void Nf4_block_worked_by_hand()
    {
        // absmax = 4. x̂ and the NF4 neighbours / midpoint that decide each code:
        //  -4   → -1.0                 → code 0
        //   2   →  0.5   (0.4407 | 0.5626, mid 0.5017)   → 12
        //   1   →  0.25  (0.2461 | 0.3379, mid 0.2920)   → 10
        //  -1.5 → -0.375 (-0.3949 | -0.2844, mid -0.3397) → 3
        //   0.3 →  0.075 (0 | 0.0796, mid 0.0398)         → 8
        //  -0.1 → -0.025 (-0.0911 | 0, mid -0.0455)       → 7
        //   3.9 →  0.975 (0.7230 | 1, mid 0.8615)         → 15
        //  -2.5 → -0.625 (-0.6962 | -0.5251, mid -0.6106) → 1
        //   0 (24 more)                                   → 7
        var x = new float[32];
        float[] head = [-4f, 2f, 1f, -1.5f, 0.3f, -0.1f, 3.9f, -2.5f];
        head.CopyTo(x, 0);
        var (packed, absmax) = Quantize4(x, FourBitType.Nf4);
        Assert.Equal([4f], absmax);
        byte[] expected = [0x0C, 0xA3, 0x87, 0xF1, .. Enumerable.Repeat((byte)0x77, 12)];
        Assert.Equal(expected, packed);

        var decoded = new float[32];
        Codec.DequantizeFourBit(packed, absmax, FourBitType.Nf4, 32, decoded);
        float[] expectedHead = [-4f, 0.44070982933044434f * 4, 0.24611230194568634f * 4, -0.39491748809814453f * 4,
            0.07958029955625534f * 4, 0f, 4f, -0.6961928009986877f * 4];
        Assert.Equal(expectedHead, decoded[..8]);
    }

    [Fact]
    public void Packing_puts_element_2j_in_the_high_nibble_and_pads_odd_tail_with_zero_code()
    {
        // absmax 1: 1.0 → 15, -1.0 → 0, 0 → 7; 33 elements → 17 bytes, last low nibble = code of 0.0.
        var x = new float[33];
        x[0] = 1f; x[1] = -1f; x[32] = 1f;
        var (packed, _) = Quantize4(x, FourBitType.Nf4);
        Assert.Equal(17, packed.Length);
        Assert.Equal(0xF0, packed[0]);
        Assert.Equal(0x77, packed[1]);
        Assert.Equal(0xF7, packed[16]);
        var (fp4, _) = Quantize4(x, FourBitType.Fp4);
        Assert.Equal(0x3B, fp4[0]);  // +1 → 0b0011, −1 → 0b1011
        Assert.Equal(0x30, fp4[16]); // FP4 pads with code 0
    }

    [Fact]
    public void Fp4_block_worked_by_hand()
    {
        // absmax 2 → x̂ = x/2. |x̂| thresholds: 0.0026, 0.0859, 0.2083, 0.2917, 0.4167, 0.5833, 0.8333.
        //  2      → 1.0     → magnitude 1     → 0b0011 = 3
        // -1      → -0.5    → 0.5 | sign      → 0b1101 = 13
        //  0.5    → 0.25    → 0.25            → 0b0111 = 7
        // -0.01   → -0.005  → 0.0052 | sign   → 0b1001 = 9
        //  0.0001 → 0.00005 → 0               → 0
        // -1e-30  → tiny negative → 0 | sign  → 8 (−0)
        var x = new float[32];
        float[] head = [2f, -1f, 0.5f, -0.01f, 0.0001f, -1e-30f];
        head.CopyTo(x, 0);
        var (packed, absmax) = Quantize4(x, FourBitType.Fp4);
        Assert.Equal([2f], absmax);
        Assert.Equal(new byte[] { 0x3D, 0x79, 0x08 }, packed[..3]);
    }

    [Fact]
    public void Exact_midpoint_goes_to_the_lower_code()
    {
        // absmax 1 (x[0] = 1), so x̂ = x. NF4[8] / 2 is the exact midpoint between codes 7 (0) and 8.
        float mid = CodeTables.Nf4[8] / 2;
        var x = new float[32];
        x[0] = 1f; x[1] = mid; x[2] = MathF.BitIncrement(mid); x[3] = -CodeTables.Fp4[1] / 2;
        var (nf4, _) = Quantize4(x, FourBitType.Nf4);
        Assert.Equal(0xF7, nf4[0]); // 1 → 15, mid → 7
        Assert.Equal(0x8, nf4[1] >> 4); // one ulp above → 8
        var (fp4, _) = Quantize4(x, FourBitType.Fp4);
        Assert.Equal(0x8, fp4[1] & 0x0F); // −(subnormal/2): tie → magnitude 0, sign set → −0
    }

    [Theory]
    [InlineData(FourBitType.Nf4)]
    [InlineData(FourBitType.Fp4)]
    public void Values_on_the_code_grid_round_trip_exactly(FourBitType type)
    {
        var table = CodeBook.ForFourBit(type).Values;
        var x = new float[64];
        for (int i = 0; i < 64; i++) x[i] = table[i % 16] * 8f; // absmax 8, a power of two: x̂ = table value exactly
        var (packed, absmax) = Quantize4(x, type);
        var decoded = new float[64];
        Codec.DequantizeFourBit(packed, absmax, type, 32, decoded);
        Assert.Equal(x, decoded); // float equality: FP4's −0 (code 8) decodes as +0, which compares equal
    }

    [Theory]
    [InlineData(DynamicMap.Signed)]
    [InlineData(DynamicMap.Unsigned)]
    public void Dynamic_values_on_the_grid_round_trip_and_codes_are_indices(DynamicMap map)
    {
        var table = map.Book().Values;
        var x = new float[512];
        for (int i = 0; i < 512; i++) x[i] = table[i % 256] * 0.25f;
        var codes = new byte[512];
        var absmax = new float[2];
        Codec.QuantizeDynamic(x, map, 256, codes, absmax);
        Assert.Equal([0.25f, 0.25f], absmax);
        for (int i = 0; i < 512; i++) Assert.Equal(i % 256, codes[i]);
        var decoded = new float[512];
        Codec.DequantizeDynamic(codes, absmax, map, 256, decoded);
        Assert.Equal(x, decoded);
    }

    [Fact]
    public void All_zero_block_encodes_zero_with_clamped_absmax()
    {
        var x = new float[40];
        x[35] = -3f; // second (short) block has its own absmax
        var (packed, absmax) = Quantize4(x, FourBitType.Nf4);
        Assert.Equal([BlockScale.MinAbsMax, 3f], absmax);
        Assert.All(packed[..16], b => Assert.Equal(0x77, b));
        var decoded = new float[40];
        Codec.DequantizeFourBit(packed, absmax, FourBitType.Nf4, 32, decoded);
        Assert.Equal(-3f, decoded[35]);
        Assert.All(decoded[..32], v => Assert.Equal(0f, v));
    }

    [Theory]
    [InlineData(float.NaN)]
    [InlineData(float.PositiveInfinity)]
    [InlineData(float.NegativeInfinity)]
    public void Non_finite_input_is_rejected_with_its_index(float bad)
    {
        var x = new float[100];
        x[70] = bad;
        var e = Assert.Throws<QuantInputException>(() => Quantize4(x, FourBitType.Nf4));
        Assert.Contains("element 70", e.Message);
    }

    [Fact]
    public void Bad_block_size_and_lengths_name_the_argument()
    {
        var e = Assert.Throws<QuantInputException>(() => Quantize4(new float[64], FourBitType.Nf4, blockSize: 48));
        Assert.StartsWith("blockSize:", e.Message);
        var e2 = Assert.Throws<QuantInputException>(() => Codec.QuantizeFourBit(new float[64], FourBitType.Nf4, 64, new byte[31], new float[1]));
        Assert.StartsWith("packed:", e2.Message);
        var e3 = Assert.Throws<QuantInputException>(() => Codec.QuantizeDynamic(new float[64], DynamicMap.Signed, 32, new byte[64], new float[3]));
        Assert.StartsWith("absmax:", e3.Message);
    }

    [Fact]
    public void Bfloat16_and_float16_inputs_quantize_like_their_float32_values()
    {
        var rng = new Random(3);
        var f32 = new float[301];
        var bf16 = new ushort[301];
        var f16 = new Half[301];
        for (int i = 0; i < f32.Length; i++)
        {
            f16[i] = (Half)(rng.NextDouble() * 4 - 2);
            f32[i] = (float)f16[i];
            bf16[i] = FloatBits.SingleToBFloat16(f32[i]);
        }
        var (expected, absExpected) = Quantize4(f32, FourBitType.Nf4, 64);
        var packed = new byte[151];
        var absmax = new float[5];
        Codec.QuantizeFourBit(f16, FourBitType.Nf4, 64, packed, absmax);
        Assert.Equal(expected, packed);
        Assert.Equal(absExpected, absmax);
        var fromBf16 = new float[301];
        for (int i = 0; i < 301; i++) fromBf16[i] = FloatBits.BFloat16ToSingle(bf16[i]);
        var (expectedBf, _) = Quantize4(fromBf16, FourBitType.Nf4, 64);
        Codec.QuantizeFourBit(bf16, FourBitType.Nf4, 64, packed, absmax);
        Assert.Equal(expectedBf, packed);
    }
}
