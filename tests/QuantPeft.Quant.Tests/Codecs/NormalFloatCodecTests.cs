using QuantPeft.Quant.Codecs;

namespace QuantPeft.Quant.Tests.Codecs;

public class NormalFloatCodecTests
{
    [Fact]
    public void Four_bit_normal_float_equals_nf4_byte_for_byte()
    {
        var rng = new Random(11);
        var x = new float[1001];
        for (int i = 0; i < x.Length; i++) x[i] = (float)(rng.NextDouble() * 2 - 1);
        var packed = new byte[NormalFloatCodec.PackedLength(x.Length, 4)];
        var absmax = new float[16];
        NormalFloatCodec.Quantize(x, 4, 64, packed, absmax);
        var nf4 = new byte[501];
        var nf4AbsMax = new float[16];
        ReferenceCodec.Instance.QuantizeFourBit(x, FourBitType.Nf4, 64, nf4, nf4AbsMax);
        Assert.Equal(nf4, packed);
        Assert.Equal(nf4AbsMax, absmax);
    }

    [Fact]
    public void Two_bit_packing_is_msb_first_and_pads_with_zero_code()
    {
        // NF2 = {−1, 0, 0.3379, 1}; absmax 1: [1, −1, 0, 0.34, −0.2] → codes 3, 0, 1, 2, 1 (−0.2 is above mid −0.5).
        var x = new float[5];
        float[] v = [1f, -1f, 0f, 0.34f, -0.2f];
        v.CopyTo(x, 0);
        var packed = new byte[2];
        var absmax = new float[1];
        NormalFloatCodec.Quantize(x, 2, 32, packed, absmax);
        Assert.Equal(0b11_00_01_10, packed[0]);
        Assert.Equal(0b01_01_01_01, packed[1]); // element 4 (code 1) then three pad slots with the code of 0.0 (1)
    }

    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(8)]
    public void Grid_values_round_trip(int bits)
    {
        var table = CodeTables.NormalFloat(bits);
        int n = table.Length * 3 + 1;
        var x = new float[n];
        for (int i = 0; i < n; i++) x[i] = table[i % table.Length] * 0.5f;
        var packed = new byte[NormalFloatCodec.PackedLength(n, bits)];
        // One block holds the whole table, so its absmax is 0.5 (a power of two) and x̂ is a table value exactly.
        var absmax = new float[1];
        NormalFloatCodec.Quantize(x, bits, 4096, packed, absmax);
        Assert.Equal(0.5f, absmax[0]);
        var decoded = new float[n];
        NormalFloatCodec.Dequantize(packed, absmax, bits, 4096, decoded);
        Assert.Equal(x, decoded);
    }
}
