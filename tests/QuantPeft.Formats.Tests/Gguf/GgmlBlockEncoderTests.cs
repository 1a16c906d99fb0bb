using System.Buffers.Binary;
using QuantPeft.Formats.Gguf;

namespace QuantPeft.Formats.Tests.Gguf;

/// <summary>The ggml block encodings against hand-worked blocks.</summary>
public class GgmlBlockEncoderTests
{
    [Fact]
    public void Q8_0ScalesByMaxOver127AndRoundsHalfAwayFromZero()
    {
        // max |x| = 127 → d = 1; 2.5 → 3, −2.5 → −3, −127 → −127.
        var x = new float[32];
        x[0] = 127; x[1] = 2.5f; x[2] = -2.5f; x[3] = -127; x[4] = 0.49f;
        var block = new byte[34];
        GgmlBlockEncoder.Encode(x, GgmlType.Q8_0, block);
        Assert.Equal((Half)1, BinaryPrimitives.ReadHalfLittleEndian(block));
        Assert.Equal(new sbyte[] { 127, 3, -3, -127, 0 }, block[2..7].Select(b => (sbyte)b));
    }

    [Fact]
    public void Q4_0UsesTheSignedMaxOverMinus8AndPacksElementJWithJPlus16()
    {
        // The element of largest magnitude is −8 → d = −8 / −8 = 1; codes q = trunc(x/d + 8.5) capped at 15.
        var x = new float[32];
        x[0] = -8; x[1] = 7; x[16] = 3; x[17] = 7.9f;
        var block = new byte[18];
        GgmlBlockEncoder.Encode(x, GgmlType.Q4_0, block);
        Assert.Equal((Half)1, BinaryPrimitives.ReadHalfLittleEndian(block));
        // byte 0: low nibble x[0] → 0, high nibble x[16] → 11; byte 1: x[1] → 15, x[17] → min(15, 16) = 15; zeros → 8.
        Assert.Equal(0 | (11 << 4), block[2]);
        Assert.Equal(15 | (15 << 4), block[3]);
        Assert.Equal(8 | (8 << 4), block[4]);
    }

    [Theory]
    [InlineData(1.0f, (ushort)0x3F80)]
    [InlineData(1.00390625f, (ushort)0x3F80)]     // exactly half an ulp above 1: ties to even (down)
    [InlineData(1.01171875f, (ushort)0x3F82)]     // 1 + 3/256: half-way between 0x3F81 and 0x3F82, ties to even (up)
    [InlineData(-2.0f, (ushort)0xC000)]
    public void BFloat16RoundsToNearestEven(float value, ushort bits) => Assert.Equal(bits, GgmlBlockEncoder.ToBFloat16(value));

    [Fact]
    public void APartialBlockIsRefused()
    {
        var e = Assert.Throws<ArgumentException>(() => GgmlBlockEncoder.Encode(new float[31], GgmlType.Q8_0, new byte[34]));
        Assert.Equal("values", e.ParamName);
    }
}
