using QuantPeft.Optimizers.State;
using QuantPeft.Quant;
using static TorchSharp.torch;

namespace QuantPeft.Optimizers.Tests.State;

public class BlockwiseDynamicQuantizerTests
{
    [Theory]
    [InlineData(true, 256)]
    [InlineData(false, 256)]
    [InlineData(true, 2048)]
    public void Codes_AreTheNearestTableEntry_ByBruteForce(bool signed, int blockSize)
    {
        // 3 blocks and a partial 4th: the padding must not disturb the last block's absmax.
        int n = 3 * blockSize + 77;
        var x = randn([n], generator: new Generator(7));
        if (!signed) x = x.abs();
        var (codes, absmax) = BlockwiseDynamicQuantizer.Quantize(x, signed, blockSize, signFix: false);
        float[] table = (signed ? CodeTables.DynamicSigned : CodeTables.DynamicUnsigned).ToArray();
        float[] xs = TestParams.Values(x);
        byte[] cs = codes.data<byte>().ToArray();
        float[] am = absmax.data<float>().ToArray();
        Assert.Equal(4, am.Length);
        for (int b = 0; b < 4; b++)
        {
            float expectedMax = xs.Skip(b * blockSize).Take(blockSize).Max(Math.Abs);
            Assert.Equal(expectedMax, am[b]);
        }
        for (int i = 0; i < n; i++)
        {
            float normalized = xs[i] / am[i / blockSize];
            float best = table.Min(t => Math.Abs(t - normalized));
            Assert.Equal(best, Math.Abs(table[cs[i]] - normalized), 1e-7f);
        }
    }

    [Fact]
    public void TableValuesTimesAbsmax_RoundTripExactly()
    {
        // Every entry of the signed map, scaled by 4 (a power of two keeps the products exact);
        // entry 255 (= 1.0) makes the absmax exactly 4.
        float[] table = CodeTables.DynamicSigned.ToArray();
        var x = tensor(table.Select(v => v * 4f).ToArray());
        var (codes, absmax) = BlockwiseDynamicQuantizer.Quantize(x, signed: true, 256, signFix: true);
        Assert.Equal(4f, absmax.item<float>());
        Assert.Equal(Enumerable.Range(0, 256).Select(i => (byte)i).ToArray(), codes.data<byte>().ToArray());
        var back = BlockwiseDynamicQuantizer.Dequantize(codes, absmax, signed: true, 256, [256]);
        Assert.True(TestParams.Same(back, x));
    }

    [Fact]
    public void AllZeroBlock_DecodesToZero()
    {
        var x = zeros(300);
        var (codes, absmax) = BlockwiseDynamicQuantizer.Quantize(x, signed: true, 256, signFix: true);
        var back = BlockwiseDynamicQuantizer.Dequantize(codes, absmax, signed: true, 256, [300]);
        Assert.Equal(0f, back.abs().max().item<float>());
    }

    [Fact]
    public void SignFix_KeepsTinyNegativesNegative()
    {
        // −1e-9 relative to an absmax of 1 is nearer to the table's 0 than to its smallest negative
        // (−5.5e-7·…), so plain rounding gives +0; the sign fix moves it one code down.
        var x = tensor(new[] { 1f, -1e-9f, 1e-9f });
        var (plain, _) = BlockwiseDynamicQuantizer.Quantize(x, signed: true, 256, signFix: false);
        var (fixedCodes, absmax) = BlockwiseDynamicQuantizer.Quantize(x, signed: true, 256, signFix: true);
        Assert.Equal(127, plain.data<byte>()[1]);
        Assert.Equal(126, fixedCodes.data<byte>()[1]);
        Assert.Equal(127, fixedCodes.data<byte>()[2]);
        var back = TestParams.Values(BlockwiseDynamicQuantizer.Dequantize(fixedCodes, absmax, true, 256, [3]));
        Assert.True(back[1] < 0);
    }
}
