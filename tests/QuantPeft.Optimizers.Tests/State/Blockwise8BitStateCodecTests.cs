using QuantPeft.Optimizers.State;
using static TorchSharp.torch;

namespace QuantPeft.Optimizers.Tests.State;

/// <summary>
/// The codec encodes and decodes in chunks of <see cref="Blockwise8BitStateCodec.ChunkElements"/> to bound its
/// temporaries; blocks are independent, so the result must equal the quantizer run over the whole tensor, bit for bit.
/// </summary>
public sealed class Blockwise8BitStateCodecTests
{
    [Theory]
    [InlineData(true, 256)]
    [InlineData(false, 2048)]
    public void ChunkedEncodeAndDecodeEqualTheWholeTensorQuantizer(bool signed, int blockSize)
    {
        using var scope = NewDisposeScope();
        // Two full chunks, then a part chunk that ends inside a block.
        long[] shape = [(2 * Blockwise8BitStateCodec.ChunkElements + 3 * blockSize + 300) / 2, 2];
        var value = randn(shape, generator: manual_seed(7));
        if (!signed) value = value.abs();
        using var alloc = new DeviceStateAllocator();
        var state = new Blockwise8BitStateCodec(blockSize).Create("m", shape, signed, CPU, alloc);

        state.Encode(value);
        var (codes, absmax) = BlockwiseDynamicQuantizer.Quantize(value, signed, blockSize, signFix: signed);
        Assert.True(Same(state.Tensors[0].Value, codes), "codes differ from the whole-tensor quantizer");
        Assert.True(Same(state.Tensors[1].Value, absmax), "absmax differs from the whole-tensor quantizer");

        var decoded = state.Decode();
        Assert.Equal(shape, decoded.shape);
        Assert.True(Same(decoded, BlockwiseDynamicQuantizer.Dequantize(codes, absmax, signed, blockSize, shape)));
        // And the round trip is close to the input (8-bit dynamic codes: a few per cent of each block's absmax).
        Assert.True((decoded - value).abs().max().item<float>() < 0.05f * value.abs().max().item<float>());
    }

    private static bool Same(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();
}
