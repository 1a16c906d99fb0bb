using QuantPeft.Quant.Codecs;
using QuantPeft.Quant.Torch;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantPeft.Quant.Tests.Torch;

[Collection("Torch")]
public class FourBitQuantizerTests
{
    private static byte[] Bytes(Tensor t) => t.contiguous().view(-1).data<byte>().ToArray();
    private static float[] Floats(Tensor t) => t.to(ScalarType.Float32).contiguous().view(-1).data<float>().ToArray();

    [Fact]
    public void Nf4_HandDerivedCodesAndNibbleOrder()
    {
        // absmax = 1, so x̂ = x exactly. A value equal to a threshold goes to the lower code.
        float t7 = 0.03979014977812767f, t0 = -0.8480964004993439f;
        using var w = torch.tensor(new[] { 1.0f, 0.0f, -1.0f, 0.5f, t7, 0.04f, t0, -0.848f }).view(1, 8);
        using var q = FourBitQuantizer.Quantize(w, FourBitType.Nf4, blockSize: 32);
        // codes: 15, 7 | 0, 12 | 7, 8 | 0, 1 ; element 2j is the high nibble.
        Assert.Equal(new byte[] { 0xF7, 0x0C, 0x78, 0x01 }, Bytes(q.Packed));
        Assert.Equal(new long[] { 4, 1 }, q.Packed.shape);
        Assert.Equal(new[] { 1.0f }, Floats(q.AbsMax));
    }

    [Fact]
    public void Fp4_HandDerivedCodes_SignBitAndNegativeZero()
    {
        using var w = torch.tensor(new[] { 1.0f, -0.0f, -1.0f, 0.5f, 0.3f, 0.004f, -1e-9f, 0.25f }).view(2, 4);
        using var q = FourBitQuantizer.Quantize(w, FourBitType.Fp4, blockSize: 32);
        // 1→0b011, −0→0 (x<0 is false), −1→0b1011, 0.5→0b101, 0.3→0b100 (1/3), 0.004→0b001,
        // −1e−9→0b1000 (−0), 0.25→0b111.
        Assert.Equal(new byte[] { 0x30, 0xB5, 0x41, 0x87 }, Bytes(q.Packed));
    }

    [Fact]
    public void Nf4Thresholds_AreMidpointsOfTheCodeTable()
    {
        var table = CodeTables.Nf4;
        for (int i = 0; i < 15; i++)
        {
            double mid = ((double)table[i] + table[i + 1]) / 2;
            Assert.True(Math.Abs(CodeTables.Nf4Thresholds.ToArray()[i] - mid) < 1e-7, $"threshold {i}");
        }
    }

    [Theory]
    [InlineData(FourBitType.Nf4, ScalarType.Float32, 32)]
    [InlineData(FourBitType.Nf4, ScalarType.BFloat16, 64)]
    [InlineData(FourBitType.Fp4, ScalarType.Float16, 64)]
    [InlineData(FourBitType.Fp4, ScalarType.BFloat16, 128)]
    public void RandomWeight_EveryCodeIsTheNearestAndDequantRoundsOnce(FourBitType format, ScalarType dtype, int blockSize)
    {
        // 13 × 11 = 143 elements: odd (pad nibble) and a partial last block.
        var gen = new torch.Generator(7);
        using var w = (torch.randn([13, 11], generator: gen) * 0.05).to(dtype);
        using var q = FourBitQuantizer.Quantize(w, format, blockSize);
        float[] x = Floats(w);
        int n = x.Length, blocks = (n + blockSize - 1) / blockSize;
        float[] absmax = Floats(q.AbsMax);
        Assert.Equal(blocks, absmax.Length);
        byte[] packed = Bytes(q.Packed);
        Assert.Equal((n + 1) / 2, packed.Length);
        var table = format == FourBitType.Nf4 ? CodeTables.Nf4.ToArray() : CodeTables.Fp4.ToArray();
        for (int b = 0; b < blocks; b++)
        {
            float max = 0;
            for (int i = b * blockSize; i < Math.Min(n, (b + 1) * blockSize); i++) max = Math.Max(max, Math.Abs(x[i]));
            Assert.Equal(max, absmax[b]);
        }
        for (int i = 0; i < n; i++)
        {
            int code = (i & 1) == 0 ? packed[i / 2] >> 4 : packed[i / 2] & 0xF;
            float scaled = Math.Clamp(x[i] * (1f / Math.Max(absmax[i / blockSize], 1e-38f)), -1f, 1f);
            Assert.Equal(NearestCode(table, scaled, format), code);
        }
        Assert.Equal(format == FourBitType.Nf4 ? 7 : 0, packed[^1] & 0xF); // pad = code of 0.0

        using var back = q.Dequantize();
        Assert.Equal(dtype, back.dtype);
        using var expected = ReferenceDequant(packed, absmax, table, blockSize, n).view(13, 11).to(dtype);
        Assert.True(TensorAssert.Identical(expected, back));
    }

    [Fact]
    public void AllZeroBlock_EncodesZeroWithoutNaN()
    {
        using var w = torch.zeros([2, 32], ScalarType.BFloat16);
        w[1, 3] = torch.tensor(0.5f).to(ScalarType.BFloat16);
        using var q = FourBitQuantizer.Quantize(w, FourBitType.Nf4, blockSize: 32);
        Assert.Equal(new[] { 0f, 0.5f }, Floats(q.AbsMax));
        Assert.All(Bytes(q.Packed).Take(16), b => Assert.Equal(0x77, b));
        using var back = q.Dequantize();
        Assert.True(TensorAssert.Identical(back, w));
    }

    [Fact]
    public void DoubleQuant_FollowsTheNestedLayoutAndCosts4_127BitsPerParam()
    {
        var gen = new torch.Generator(11);
        using var w = torch.randn([256, 64 * 4], generator: gen).to(ScalarType.BFloat16); // 1024 blocks of 64
        using var plain = FourBitQuantizer.Quantize(w, FourBitType.Nf4);
        using var dq = FourBitQuantizer.Quantize(w, FourBitType.Nf4, doubleQuant: true);
        Assert.True(dq.IsNested);
        Assert.Equal(ScalarType.Byte, dq.AbsMax.dtype);
        Assert.Equal(new long[] { 1024 }, dq.AbsMax.shape);
        Assert.Equal(new long[] { 4 }, dq.NestedAbsMax!.shape);
        Assert.True(TensorAssert.Identical(plain.Packed, dq.Packed)); // DQ changes the scales, not the codes

        float[] raw = Floats(plain.AbsMax);
        Assert.Equal(raw.Average(), dq.NestedOffset, 4);
        float[] nested = Floats(dq.NestedAbsMax);
        for (int g = 0; g < 4; g++)
            Assert.Equal(raw.Skip(g * 256).Take(256).Max(a => Math.Abs(a - dq.NestedOffset)), nested[g], 5);

        // Recovered scale = dyn[q]·nested + offset, and the 8-bit map keeps it within half a map step.
        float[] recovered = Floats(dq.DequantizeAbsMax());
        byte[] codes = Bytes(dq.AbsMax);
        var dyn = CodeTables.DynamicSigned;
        for (int i = 0; i < raw.Length; i++)
        {
            Assert.Equal(dyn[codes[i]] * nested[i / 256] + dq.NestedOffset, recovered[i], 6);
            Assert.True(Math.Abs(recovered[i] - raw[i]) <= 0.02f * nested[i / 256]);
        }

        double bits = 8.0 * dq.StorageBytes / w.numel();
        Assert.Equal(4 + 8.0 / 64 + 32.0 / (64 * 256), bits, 6);
        Assert.Equal(4.5, 8.0 * plain.StorageBytes / w.numel(), 6);
    }

    [Fact]
    public void DoubleQuant_EqualScalesDoNotProduceNaN()
    {
        using var w = torch.ones([4, 64]); // every block's absmax is 1 → absmax − offset = 0
        using var q = FourBitQuantizer.Quantize(w, FourBitType.Nf4, doubleQuant: true);
        using var back = q.Dequantize();
        Assert.True(TensorAssert.Identical(back, w));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(7)]
    public void ChunkedDequant_EqualsDequantAtOnce(long chunkRows)
    {
        var gen = new torch.Generator(3);
        using var w = torch.randn([37, 45], generator: gen).to(ScalarType.BFloat16); // rows cross block edges
        using var q = FourBitQuantizer.Quantize(w, FourBitType.Nf4, blockSize: 32, doubleQuant: true);
        using var once = q.Dequantize(ScalarType.BFloat16, chunkRows: 1000);
        using var chunked = q.Dequantize(ScalarType.BFloat16, chunkRows: chunkRows);
        Assert.True(TensorAssert.Identical(once, chunked));
        using var into = torch.empty([37, 45], ScalarType.Float32);
        q.DequantizeInto(into, chunkRows);
        using var onceF32 = q.Dequantize(ScalarType.Float32, chunkRows: 1000);
        Assert.True(TensorAssert.Identical(onceF32, into));
    }

    [Fact]
    public void To_CopiesIntoANewOwner()
    {
        using var w = torch.randn([8, 64]);
        var q = FourBitQuantizer.Quantize(w, FourBitType.Fp4, doubleQuant: true);
        using var expected = q.Dequantize();
        using var moved = q.to(torch.CPU);
        q.Dispose();
        using var back = moved.Dequantize();
        Assert.True(TensorAssert.Identical(expected, back));
        Assert.Equal(FourBitType.Fp4, moved.QuantType);
    }

    [Fact]
    public void BadInput_NamesTheTensorAndTheProblem()
    {
        using var oneD = torch.randn(64);
        var e1 = Assert.Throws<QuantInputException>(() => FourBitQuantizer.Quantize(oneD, name: "layers.0.q_proj.weight"));
        Assert.Contains("layers.0.q_proj.weight", e1.Message);
        Assert.Contains("2-D", e1.Message);
        using var ints = torch.ones([4, 64], ScalarType.Int32);
        Assert.Contains("Int32", Assert.Throws<QuantInputException>(() => FourBitQuantizer.Quantize(ints)).Message);
        using var w = torch.randn([4, 64]);
        Assert.Contains("48", Assert.Throws<QuantInputException>(() => FourBitQuantizer.Quantize(w, blockSize: 48)).Message);
    }

    internal static int NearestCode(float[] table, float scaled, FourBitType format)
    {
        if (format == FourBitType.Fp4)
        {
            // Nearest magnitude among codes 0..7, then the sign bit for negative values.
            int best = 0;
            for (int k = 1; k < 8; k++)
                if (Math.Abs(Math.Abs(scaled) - table[k]) < Math.Abs(Math.Abs(scaled) - table[best])) best = k;
            return scaled < 0 ? best | 8 : best;
        }
        int nearest = 0; // table is ascending; strict '<' keeps the lower code on ties
        for (int k = 1; k < 16; k++)
            if (Math.Abs(scaled - table[k]) < Math.Abs(scaled - table[nearest])) nearest = k;
        return nearest;
    }

    private static Tensor ReferenceDequant(byte[] packed, float[] absmax, float[] table, int blockSize, int n)
    {
        var values = new float[n];
        for (int i = 0; i < n; i++)
        {
            int code = (i & 1) == 0 ? packed[i / 2] >> 4 : packed[i / 2] & 0xF;
            values[i] = table[code] * absmax[i / blockSize];
        }
        return torch.tensor(values);
    }
}
