using System.Runtime.InteropServices;
using QuantPeft.Quant.Codecs;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantPeft.Quant.Torch;

public sealed partial class QuantizedTensor
{
    /// <summary>
    /// Whether row and column slices can be decoded on their own: every row starts on a block boundary
    /// (<c>in % blockSize == 0</c>), so a slice's codes and scales are plain strided views.
    /// </summary>
    internal bool RowAligned => Columns % BlockSize == 0;

    /// <summary>
    /// Whether row slabs can be decoded by the SIMD CPU codec straight into tensor memory: the weight lives on
    /// the CPU and every row starts on a block boundary. Torch's gather-based decode costs several times the
    /// matmul there; the SIMD decoder rounds exactly as this path does (f32 product, one round to nearest even).
    /// </summary>
    internal bool HostDecodable => HostKernels.For(Device) && RowAligned;

    /// <summary>
    /// Rows [<paramref name="r0"/>, r0 + <paramref name="rows"/>) dequantized to a new <c>[rows, in]</c> tensor of
    /// <paramref name="dtype"/>, with the same values as the matching rows of <see cref="Dequantize"/>.
    /// </summary>
    /// <remarks>
    /// Lets a caller that needs the whole weight row by row (DoRA's row norms) hold one slab instead of the matrix.
    /// A weight whose rows do not start on a block boundary cannot be sliced by rows; it is decoded whole and cut.
    /// </remarks>
    /// <exception cref="QuantInputException">The row range is outside the weight, or <paramref name="dtype"/> is not a float type.</exception>
    public Tensor DequantizeRows(long r0, long rows, ScalarType dtype)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        CheckFloat(dtype, "dtype");
        if (r0 < 0 || rows < 1 || r0 + rows > Rows)
            throw new QuantInputException($"'rows': [{r0}, {r0 + rows}) is outside the weight's {Rows} rows.");
        using var scope = torch.NewDisposeScope();
        if (!RowAligned)
            return Dequantize(dtype).narrow(0, r0, rows).clone().MoveToOuterDisposeScope();
        var result = torch.empty([rows, Columns], dtype, Device);
        lock (DecodeWorkspace.Gate)
            DecodeRows(r0, rows, result, ScalesForDecode());
        return result.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Rows [<paramref name="r0"/>, r0 + rows) dequantized into <paramref name="destination"/>, a contiguous
    /// <c>[rows, in]</c> float tensor on the weight's device: the same values as <see cref="DequantizeRows"/>, without
    /// allocating (a caller that walks the whole weight reuses one slab buffer).
    /// </summary>
    /// <exception cref="QuantInputException">The destination is not a contiguous [rows, in] float tensor, or the rows are outside the weight.</exception>
    public void DequantizeRowsInto(long r0, Tensor destination)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        CheckFloat(destination.dtype, "destination");
        long rows = destination.dim() == 2 ? destination.shape[0] : -1;
        if (rows < 1 || destination.shape[1] != Columns || !destination.is_contiguous() || r0 < 0 || r0 + rows > Rows)
            throw new QuantInputException($"'destination': expected a contiguous [rows, {Columns}] tensor for rows from {r0} within {Rows}, got [{string.Join(", ", destination.shape)}].");
        if (!RowAligned)
        {
            using var whole = Dequantize(destination.dtype);
            destination.copy_(whole.narrow(0, r0, rows));
            return;
        }
        lock (DecodeWorkspace.Gate)
        {
            using var scope = torch.NewDisposeScope();
            DecodeRows(r0, rows, destination, ScalesForDecode());
        }
    }


    internal void DecodeRows(long r0, long rows, Tensor destination, Tensor scales)
    {
        if (HostDecodable && HostKernels.For(destination.device) && destination.is_contiguous() && scales.is_contiguous() && Packed.is_contiguous())
        {
            DecodeRowsOnHost(r0, rows, destination, scales);
            return;
        }
        using var scope = torch.NewDisposeScope();
        long perRow = Columns / 2;
        var bytes = Packed.view(-1).narrow(0, r0 * perRow, rows * perRow);
        var values = PairTable().index_select(0, bytes.to(ScalarType.Int32)).view(-1, BlockSize);
        values.mul_(scales.narrow(0, r0 * (Columns / BlockSize), rows * (Columns / BlockSize)).unsqueeze(1));
        destination.view(-1).copy_(values.view(-1));
    }

    // HostKernels.Bytes(Tensor) is a span over a contiguous CPU tensor's own memory (no copy), so the codec writes in place.
    private void DecodeRowsOnHost(long r0, long rows, Tensor destination, Tensor scales)
    {
        long perRow = Columns / 2, blocksPerRow = Columns / BlockSize;
        ReadOnlySpan<byte> packed = HostKernels.Bytes(Packed).Slice(checked((int)(r0 * perRow)), checked((int)(rows * perRow)));
        ReadOnlySpan<float> absmax = MemoryMarshal.Cast<byte, float>(HostKernels.Bytes(scales)).Slice(checked((int)(r0 * blocksPerRow)), checked((int)(rows * blocksPerRow)));
        var type = QuantType;
        Span<byte> output = HostKernels.Bytes(destination);
        var codec = Kernels.SimdCodec.Instance;
        switch (destination.dtype)
        {
            case ScalarType.BFloat16:
                codec.DequantizeFourBit(packed, absmax, type, BlockSize, MemoryMarshal.Cast<byte, ushort>(output));
                break;
            case ScalarType.Float16:
                codec.DequantizeFourBit(packed, absmax, type, BlockSize, MemoryMarshal.Cast<byte, Half>(output));
                break;
            default:
                codec.DequantizeFourBit(packed, absmax, type, BlockSize, MemoryMarshal.Cast<byte, float>(output));
                break;
        }
    }

    // Each row's column segment is whole blocks, so it decodes on its own. Rows are split across cores and each
    // segment goes straight to the single-block-range kernel: a backward pass decodes every row once per column
    // slab (11008 rows × 13 slabs for a 7B MLP weight), so a per-segment codec call with its argument checks,
    // pinning and closure was a measurable share of the time.
    private unsafe void DecodeColumnsOnHost(long c0, long cols, Tensor destination, Tensor scales)
    {
        long perRow = Columns / 2, blocksPerRow = Columns / BlockSize;
        var type = QuantType;
        int segment = checked((int)cols), blockSize = BlockSize;
        ScalarType dtype = destination.dtype;
        long rowsTotal = Rows;
        const int RowsPerTask = 64;
        long tasks = (Rows + RowsPerTask - 1) / RowsPerTask;
        fixed (byte* packedBase = HostKernels.Bytes(Packed))
        fixed (byte* absBase = HostKernels.Bytes(scales))
        fixed (byte* outBase = HostKernels.Bytes(destination))
        fixed (float* tableBase = Codecs.CodeBook.ForFourBit(type).Values)
        {
            nint packedAll = (nint)packedBase, absAll = (nint)absBase, outAll = (nint)outBase, table = (nint)tableBase;
            Parallel.For(0, tasks, t =>
            {
                long end = Math.Min(rowsTotal, (t + 1) * RowsPerTask);
                for (long r = t * RowsPerTask; r < end; r++)
                {
                    byte* packed = (byte*)packedAll + r * perRow + c0 / 2;
                    float* absmax = (float*)absAll + r * blocksPerRow + c0 / blockSize;
                    switch (dtype)
                    {
                        case ScalarType.BFloat16:
                            Kernels.SimdFourBitDecoder.ToBFloat16(packed, absmax, (float*)table, blockSize, 0, segment, (ushort*)outAll + r * segment);
                            break;
                        case ScalarType.Float16:
                            Kernels.SimdFourBitDecoder.ToHalf(packed, absmax, (float*)table, blockSize, 0, segment, (Half*)outAll + r * segment);
                            break;
                        default:
                            Kernels.SimdFourBitDecoder.ToSingle(packed, absmax, (float*)table, blockSize, 0, segment, (float*)outAll + r * segment);
                            break;
                    }
                }
            });
        }
    }

    /// <summary>Decodes columns [c0, c0+cols) of every row into <paramref name="destination"/> (contiguous [out, cols]).</summary>
    internal void DecodeColumns(long c0, long cols, Tensor destination, Tensor scales)
    {
        if (HostDecodable && HostKernels.For(destination.device) && destination.is_contiguous() && scales.is_contiguous() && Packed.is_contiguous())
        {
            DecodeColumnsOnHost(c0, cols, destination, scales);
            return;
        }
        using var scope = torch.NewDisposeScope();
        long blocksPerRow = Columns / BlockSize;
        var bytes = Packed.view(Rows, Columns / 2).narrow(1, c0 / 2, cols / 2);      // (out, cols/2), strided
        var values = PairTable().index_select(0, bytes.reshape(-1).to(ScalarType.Int32)) // (out·cols/2, 2)
            .view(Rows, cols / BlockSize, BlockSize);
        values.mul_(scales.view(Rows, blocksPerRow).narrow(1, c0 / BlockSize, cols / BlockSize).unsqueeze(2));
        destination.copy_(values.view(Rows, cols));
    }
}
