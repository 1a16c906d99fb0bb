using QuantPeft.Quant.LqLora;

namespace QuantPeft.Quant.Tests.LqLora;

public class BitPackingTests
{
    [Fact]
    public void ThreeBitCodesFormAMostSignificantFirstBitStream()
    {
        // 5 = 101, 3 = 011, 7 = 111 → 1010 1111 | 1000 0000 (zero padded).
        Assert.Equal(new byte[] { 0xAF, 0x80 }, BitPacking.Pack([5, 3, 7], 3));
    }

    [Fact]
    public void FourBitsIsBitsandbytesNibbleOrderAndTwoBitsFourPerByte()
    {
        Assert.Equal(new byte[] { 0x12, 0x30 }, BitPacking.Pack([1, 2, 3], 4));
        // 3, 0, 2, 1 → 11 00 10 01 = 0xC9; then 2 → 10 00 00 00 = 0x80.
        Assert.Equal(new byte[] { 0xC9, 0x80 }, BitPacking.Pack([3, 0, 2, 1, 2], 2));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(5)]
    [InlineData(7)]
    [InlineData(8)]
    public void RoundTripsOddCounts(int bits)
    {
        var rng = new Random(bits);
        foreach (int count in new[] { 0, 1, 7, 13, 1001 })
        {
            var codes = new byte[count];
            for (int i = 0; i < count; i++) codes[i] = (byte)rng.Next(1 << bits);
            byte[] packed = BitPacking.Pack(codes, bits);
            Assert.Equal((count * bits + 7) / 8, packed.Length);
            Assert.Equal(codes, BitPacking.Unpack(packed, bits, count));
        }
    }

    [Fact]
    public void RejectsCodesThatDoNotFitAndWrongLengths()
    {
        Assert.Throws<QuantInputException>(() => BitPacking.Pack([4], 2));
        var e = Assert.Throws<QuantInputException>(() => BitPacking.Unpack(new byte[3], 3, 9, "x.weight"));
        Assert.Contains("x.weight", e.Message);
    }
}
