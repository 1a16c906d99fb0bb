using System.Runtime.InteropServices;
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
    internal bool HostDecodable => Device.type == DeviceType.CPU && RowAligned;

    /// <summary>Decodes rows [r0, r0+rows) into <paramref name="destination"/> (contiguous [rows, in]).</summary>
    internal void DecodeRows(long r0, long rows, Tensor destination, Tensor scales)
    {
        if (HostDecodable && destination.device.type == DeviceType.CPU && destination.is_contiguous() && scales.is_contiguous() && Packed.is_contiguous())
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

    // Tensor.bytes is a span over a contiguous CPU tensor's own memory (no copy), so the codec writes in place.
    private void DecodeRowsOnHost(long r0, long rows, Tensor destination, Tensor scales)
    {
        long perRow = Columns / 2, blocksPerRow = Columns / BlockSize;
        ReadOnlySpan<byte> packed = Packed.bytes.Slice(checked((int)(r0 * perRow)), checked((int)(rows * perRow)));
        ReadOnlySpan<float> absmax = MemoryMarshal.Cast<byte, float>(scales.bytes).Slice(checked((int)(r0 * blocksPerRow)), checked((int)(rows * blocksPerRow)));
        var type = Format == FourBitFormat.Nf4 ? Codecs.FourBitType.Nf4 : Codecs.FourBitType.Fp4;
        Span<byte> output = destination.bytes;
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

    // Each row's column segment is whole blocks, so it decodes on its own; rows are split across cores and
    // each segment is decoded single-threaded (the per-call parallelism would only add overhead).
    private void DecodeColumnsOnHost(long c0, long cols, Tensor destination, Tensor scales)
    {
        long perRow = Columns / 2, blocksPerRow = Columns / BlockSize;
        var type = Format == FourBitFormat.Nf4 ? Codecs.FourBitType.Nf4 : Codecs.FourBitType.Fp4;
        int segment = checked((int)cols), segmentBytes = segment / 2, segmentBlocks = segment / BlockSize;
        ScalarType dtype = destination.dtype;
        const int RowsPerTask = 64;
        long tasks = (Rows + RowsPerTask - 1) / RowsPerTask;
        Parallel.For(0, tasks, t =>
        {
            ReadOnlySpan<byte> packedAll = Packed.bytes;
            ReadOnlySpan<float> absAll = MemoryMarshal.Cast<byte, float>(scales.bytes);
            Span<byte> outAll = destination.bytes;
            long end = Math.Min(Rows, (t + 1) * RowsPerTask);
            for (long r = t * RowsPerTask; r < end; r++)
            {
                ReadOnlySpan<byte> packed = packedAll.Slice((int)(r * perRow + c0 / 2), segmentBytes);
                ReadOnlySpan<float> absmax = absAll.Slice((int)(r * blocksPerRow + c0 / BlockSize), segmentBlocks);
                switch (dtype)
                {
                    case ScalarType.BFloat16:
                        SingleThreaded.DequantizeFourBit(packed, absmax, type, BlockSize, MemoryMarshal.Cast<byte, ushort>(outAll).Slice((int)(r * segment), segment));
                        break;
                    case ScalarType.Float16:
                        SingleThreaded.DequantizeFourBit(packed, absmax, type, BlockSize, MemoryMarshal.Cast<byte, Half>(outAll).Slice((int)(r * segment), segment));
                        break;
                    default:
                        SingleThreaded.DequantizeFourBit(packed, absmax, type, BlockSize, MemoryMarshal.Cast<byte, float>(outAll).Slice((int)(r * segment), segment));
                        break;
                }
            }
        });
    }

    private static readonly Kernels.SimdCodec SingleThreaded = new(maxThreads: 1);

    /// <summary>Decodes columns [c0, c0+cols) of every row into <paramref name="destination"/> (contiguous [out, cols]).</summary>
    internal void DecodeColumns(long c0, long cols, Tensor destination, Tensor scales)
    {
        if (HostDecodable && destination.device.type == DeviceType.CPU && destination.is_contiguous() && scales.is_contiguous() && Packed.is_contiguous())
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
