using static TorchSharp.torch;

namespace QuantPeft.Optimizers.State;

/// <summary>
/// bitsandbytes-style 8-bit moments: uint8 codes + one f32 absmax per block, signed dynamic map for m,
/// unsigned for v. Tensors smaller than <see cref="MinQuantizedElements"/> keep f32 moments, as bnb does.
/// </summary>
/// <remarks>Bytes per quantized moment: numel (codes) + 4·⌈numel/blockSize⌉ (absmax).</remarks>
public sealed class Blockwise8BitStateCodec : IOptimizerStateCodec
{
    /// <summary>bnb's <c>min_8bit_size</c>: below this many elements the state stays 32-bit.</summary>
    public const int MinQuantizedElements = 4096;

    private static readonly DenseStateCodec SmallTensorCodec = new(ScalarType.Float32);

    /// <summary>Creates the codec; <paramref name="blockSize"/> is 256 (bnb ≥ 0.44) or 2048 (the paper).</summary>
    /// <exception cref="OptimizerConfigException">Another block size.</exception>
    public Blockwise8BitStateCodec(int blockSize = 256)
    {
        if (blockSize is not (256 or 2048))
            throw new OptimizerConfigException($"8-bit optimizer block size must be 256 or 2048, found {blockSize}");
        BlockSize = blockSize;
    }

    /// <summary>Elements per absmax block.</summary>
    public int BlockSize { get; }

    /// <inheritdoc />
    public string Name => $"8bit-b{BlockSize}";

    /// <inheritdoc />
    public bool ZeroMomentsOnNonFiniteGradient => true;

    /// <inheritdoc />
    public IMomentState Create(string name, long[] shape, bool signed, Device device, IStateAllocator allocator)
    {
        long n = shape.Aggregate(1L, (a, b) => a * b);
        if (n < MinQuantizedElements)
            return SmallTensorCodec.Create(name, shape, signed, device, allocator);
        var codes = allocator.Allocate(name, [n], ScalarType.Byte, device);
        var absmax = allocator.Allocate(name + ".absmax", [BlockwiseDynamicQuantizer.BlockCount(n, BlockSize)], ScalarType.Float32, device);
        // Zero codes with zero absmax decode to 0 (signed code 0 is −0.99·0), matching bnb's initial state.
        return new Quantized(codes, absmax, signed, BlockSize, shape);
    }

    private sealed class Quantized(IStateTensor codes, IStateTensor absmax, bool signed, int blockSize, long[] shape) : IMomentState
    {
        public IReadOnlyList<IStateTensor> Tensors { get; } = [codes, absmax];

        public Tensor Decode() =>
            BlockwiseDynamicQuantizer.Dequantize(codes.Value, absmax.Value, signed, blockSize, shape);

        public void Encode(Tensor value)
        {
            var (c, a) = BlockwiseDynamicQuantizer.Quantize(value, signed, blockSize, signFix: signed);
            using (c) codes.Value.copy_(c);
            using (a) absmax.Value.copy_(a);
        }
    }
}
