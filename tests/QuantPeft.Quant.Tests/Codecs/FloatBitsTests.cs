using QuantPeft.Quant.Codecs;

namespace QuantPeft.Quant.Tests.Codecs;

public class FloatBitsTests
{
    [Theory]
    [InlineData(0x3F808000u, (ushort)0x3F80)] // tie, even below → down
    [InlineData(0x3F818000u, (ushort)0x3F82)] // tie, odd below → up
    [InlineData(0x3F808001u, (ushort)0x3F81)] // above the tie → up
    [InlineData(0x7F7FFFFFu, (ushort)0x7F80)] // float.MaxValue rounds to +Inf in bfloat16
    [InlineData(0x80000000u, (ushort)0x8000)] // −0 keeps its sign
    public void Bfloat16_rounds_to_nearest_even(uint bits, ushort expected)
    {
        Assert.Equal(expected, FloatBits.SingleToBFloat16(BitConverter.UInt32BitsToSingle(bits)));
    }

    [Fact]
    public void Half_conversion_matches_dotnet_for_random_and_special_values()
    {
        var rng = new Random(5);
        var values = new List<float> { 0f, -0f, 65504f, 65519.996f, 65520f, 6.1035156e-5f, 5.9604645e-8f, 2.9802322e-8f, 2.9802326e-8f, 1e-10f, float.MaxValue, float.PositiveInfinity, float.NegativeInfinity };
        for (int i = 0; i < 200_000; i++) values.Add(BitConverter.UInt32BitsToSingle((uint)rng.NextInt64(0, 1L << 32)));
        for (int i = 0; i < 200_000; i++) values.Add((float)((rng.NextDouble() - 0.5) * Math.Pow(2, rng.Next(-30, 17))));
        foreach (float v in values)
        {
            if (float.IsNaN(v)) { Assert.True(Half.IsNaN(BitConverter.UInt16BitsToHalf(FloatBits.SingleToHalfBits(v)))); continue; }
            Assert.Equal(BitConverter.HalfToUInt16Bits((Half)v), FloatBits.SingleToHalfBits(v));
        }
    }
}
