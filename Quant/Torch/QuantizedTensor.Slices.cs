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

    /// <summary>Decodes rows [r0, r0+rows) into <paramref name="destination"/> (contiguous [rows, in]).</summary>
    internal void DecodeRows(long r0, long rows, Tensor destination, Tensor scales)
    {
        using var scope = torch.NewDisposeScope();
        long perRow = Columns / 2;
        var bytes = Packed.view(-1).narrow(0, r0 * perRow, rows * perRow);
        var values = PairTable().index_select(0, bytes.to(ScalarType.Int32)).view(-1, BlockSize);
        values.mul_(scales.narrow(0, r0 * (Columns / BlockSize), rows * (Columns / BlockSize)).unsqueeze(1));
        destination.view(-1).copy_(values.view(-1));
    }

    /// <summary>Decodes columns [c0, c0+cols) of every row into <paramref name="destination"/> (contiguous [out, cols]).</summary>
    internal void DecodeColumns(long c0, long cols, Tensor destination, Tensor scales)
    {
        using var scope = torch.NewDisposeScope();
        long blocksPerRow = Columns / BlockSize;
        var bytes = Packed.view(Rows, Columns / 2).narrow(1, c0 / 2, cols / 2);      // (out, cols/2), strided
        var values = PairTable().index_select(0, bytes.reshape(-1).to(ScalarType.Int32)) // (out·cols/2, 2)
            .view(Rows, cols / BlockSize, BlockSize);
        values.mul_(scales.view(Rows, blocksPerRow).narrow(1, c0 / BlockSize, cols / BlockSize).unsqueeze(2));
        destination.copy_(values.view(Rows, cols));
    }
}
