using QuantPeft.Quant.LqLora;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantPeft.Quant.Tests.LqLora;

[Collection("Torch")]
public class LqQuantizedMatrixTests
{
    private static Tensor Matrix(long rows, long cols, ulong seed)
    {
        using var gen = new Generator(seed);
        return torch.randn(rows, cols, generator: gen, dtype: ScalarType.Float32);
    }

    [Theory]
    [InlineData(2, 256)]
    [InlineData(3, 256)]
    [InlineData(4, 256)]
    [InlineData(3, 16)]
    public void PackedStorageDecodesToExactlyTheFakeQuantizedValuesInKBitsPerCode(int bits, int b1)
    {
        var config = new LqQuantConfig(bits, 8, SecondLevelStorage.BFloat16, 64, b1);
        using var w = Matrix(128, 256, (ulong)(bits * 100 + b1));
        using var expected = LqQuantizer.FakeQuantize(w, config);
        using var q = LqQuantizedMatrix.Quantize(w, config);
        using var actual = q.Dequantize();
        Assert.True(actual.equal(expected).all().item<bool>());
        // k bits per code, one byte per 64-block scale code, one second-level scale (2 bytes in bf16) per group, the offset.
        long numel = 128 * 256, blocks = numel / 64, groups = blocks / b1;
        Assert.Equal(numel * bits / 8 + blocks + groups * 2 + 4, q.StorageBytes);
    }

    [Fact]
    public void RowSlabsDecodeTheSameRowsAndMisalignedSlabsAreRefused()
    {
        var config = new LqQuantConfig(3, 8, SecondLevelStorage.Float32, 64, 16);
        using var w = Matrix(48, 64, 9);   // 64 columns: a group of 1024 elements is 16 rows
        using var q = LqQuantizedMatrix.Quantize(w, config);
        Assert.Equal(16, q.RowAlignment);
        using var all = q.Dequantize();
        using var slab = torch.empty(16, 64);
        q.DecodeRows(16, 16, slab);
        Assert.True(slab.equal(all.narrow(0, 16, 16)).all().item<bool>());
        Assert.Throws<ArgumentException>(() => q.DecodeRows(8, 16, slab));
    }

    [Fact]
    public void BitWidthsOtherThanTwoThreeFourAndOddSizesAreRejectedByName()
    {
        using var w = Matrix(16, 64, 1);
        var e = Assert.Throws<QuantInputException>(() => LqQuantizedMatrix.Quantize(w, new LqQuantConfig(8, 8, SecondLevelStorage.Float32, 64, 16), "layers.0.q"));
        Assert.Contains("'layers.0.q'", e.Message);
        Assert.Throws<QuantInputException>(() => LqQuantizedMatrix.Quantize(w, new LqQuantConfig(4, 8, SecondLevelStorage.Float32, 64, 256)));
    }
}
