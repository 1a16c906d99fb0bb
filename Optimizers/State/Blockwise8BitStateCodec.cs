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

    /// <summary>
    /// Elements decoded or encoded at a time (a multiple of both block sizes, so every chunk starts on a block):
    /// the quantizer's TorchSharp ops materialise about 80 bytes of temporaries per element, so a whole-tensor pass
    /// over a 65M-element embedding would need 5 GB beside states of 130 MB. Blocks are independent, so chunking
    /// changes no bit of the result.
    /// </summary>
    internal const long ChunkElements = 1L << 20;

    private sealed class Quantized(IStateTensor codes, IStateTensor absmax, bool signed, int blockSize, long[] shape) : IMomentState
    {
        public IReadOnlyList<IStateTensor> Tensors { get; } = [codes, absmax];

        public Tensor Decode()
        {
            long n = codes.Value.numel();
            // The returned tensor must be the only handle on its storage: the rules free a decoded moment early
            // (AdamWRule disposes v after the direction), which frees nothing while another view is left in the scope.
            var result = empty(shape, ScalarType.Float32, codes.Value.device);
            using var flat = result.view(n);
            for (long start = 0; start < n; start += ChunkElements)
            {
                using var scope = NewDisposeScope();
                long length = Math.Min(ChunkElements, n - start);
                var part = BlockwiseDynamicQuantizer.Dequantize(codes.Value.narrow(0, start, length), Blocks(absmax.Value, start, length),
                    signed, blockSize, [length]);
                flat.narrow(0, start, length).copy_(part);
            }
            return result;
        }

        public void Encode(Tensor value)
        {
            using var outer = NewDisposeScope();
            var flat = value.reshape(-1);
            long n = flat.numel();
            for (long start = 0; start < n; start += ChunkElements)
            {
                using var scope = NewDisposeScope();
                long length = Math.Min(ChunkElements, n - start);
                var (c, a) = BlockwiseDynamicQuantizer.Quantize(flat.narrow(0, start, length), signed, blockSize, signFix: signed);
                codes.Value.narrow(0, start, length).copy_(c);
                Blocks(absmax.Value, start, length).copy_(a);
            }
        }

        private Tensor Blocks(Tensor all, long start, long length) =>
            all.narrow(0, start / blockSize, BlockwiseDynamicQuantizer.BlockCount(length, blockSize));
    }
}
