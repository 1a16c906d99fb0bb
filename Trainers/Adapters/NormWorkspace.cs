using static TorchSharp.torch;

namespace QuantPeft.Trainers.Adapters;

/// <summary>
/// The slab buffer DoRA's row norms work in (a slab of W₀ + s·B·A), shared by every DoRA layer and kept for the
/// process: <see cref="DoraLinear.NormSlabElements"/> elements (4 MiB in f32), more only for a row wider than that.
/// </summary>
/// <remarks>Callers hold <see cref="Gate"/> while they use a rented view.</remarks>
internal static class NormWorkspace
{
    /// <summary>Held while a rented buffer is in use.</summary>
    public static readonly object Gate = new();

    private static Tensor? _buffer;

    /// <summary>A contiguous [rows, cols] view of the buffer, replaced when too small or of another dtype or device.</summary>
    public static Tensor Rent(long rows, long cols, ScalarType dtype, Device device)
    {
        long need = Math.Max(rows * cols, DoraLinear.NormSlabElements);
        Tensor? buffer = _buffer;
        if (buffer is null || buffer.numel() < rows * cols || buffer.dtype != dtype || buffer.device.type != device.type || buffer.device.index != device.index)
        {
            buffer?.Dispose();
            buffer = _buffer = empty(need, dtype, device).DetachFromDisposeScope();
        }
        return buffer.narrow(0, 0, rows * cols).view(rows, cols);
    }
}
