using QuantPeft.Quant.Codecs;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantPeft.Quant.Torch;

/// <summary>
/// A 2-D weight in bitsandbytes' blockwise 4-bit format: the packed codes plus the quantization state.
/// This object is the single owner of its tensors; disposing it frees them.
/// </summary>
/// <remarks>
/// Field layout follows bitsandbytes' <c>QuantState</c>: <see cref="Packed"/> is uint8 <c>[(n+1)/2, 1]</c>;
/// <see cref="AbsMax"/> is float32 <c>[blocks]</c>, or uint8 <c>[blocks]</c> when <see cref="IsNested"/>, in
/// which case the block scale is <c>DynamicSigned[AbsMax[i]] · NestedAbsMax[i / 256] + NestedOffset</c>.
/// </remarks>
public sealed partial class QuantizedTensor : IDisposable
{
    /// <summary>Rows dequantized per chunk by default (see <see cref="Dequantize"/> for the memory bound).</summary>
    public const long DefaultChunkRows = 1024;

    /// <summary>
    /// Values per decode slab of a 4-bit matmul on a GPU (64 MiB in bf16). The GPU decodes with torch kernels, each a
    /// launch, and gathers at memory bandwidth, so a few large slabs beat many small ones: every projection of a 7B
    /// model decodes in one or two slabs. The host keeps <see cref="DefaultChunkRows"/>, sized for its caches.
    /// </summary>
    public const long DeviceSlabElements = 32L << 20;

    /// <summary>Rows per decode slab of a matmul over this weight: <see cref="DefaultChunkRows"/> on the CPU, about <see cref="DeviceSlabElements"/> values elsewhere.</summary>
    public long ChunkRowsForDevice() =>
        Device.type == DeviceType.CPU ? DefaultChunkRows : Math.Max(DefaultChunkRows, DeviceSlabElements / Math.Max(1, Columns));

    private readonly long[] _shape;
    private Tensor? _pairTable;
    private bool _disposed;

    internal QuantizedTensor(
        Tensor packed, Tensor absMax, Tensor? nestedAbsMax, float nestedOffset,
        FourBitType format, int blockSize, long[] shape, ScalarType dtype)
    {
        Packed = packed.DetachFromDisposeScope();
        AbsMax = absMax.DetachFromDisposeScope();
        NestedAbsMax = nestedAbsMax?.DetachFromDisposeScope();
        NestedOffset = nestedOffset;
        QuantType = format;
        BlockSize = blockSize;
        _shape = (long[])shape.Clone();
        DType = dtype;
    }

    /// <summary>The packed codes, uint8 <c>[(n+1)/2, 1]</c>; element 2j is the high nibble of byte j.</summary>
    public Tensor Packed { get; }

    /// <summary>Per-block absmax: float32 <c>[blocks]</c>, or uint8 codes of the dynamic map when nested.</summary>
    public Tensor AbsMax { get; }

    /// <summary>The second-level float32 absmax <c>[ceil(blocks/256)]</c>; null without double quantization.</summary>
    public Tensor? NestedAbsMax { get; }

    /// <summary>The mean of the absmax values subtracted before double quantization (0 when not nested).</summary>
    public float NestedOffset { get; }

    /// <summary>Whether the absmax values are themselves 8-bit quantized (double quantization).</summary>
    public bool IsNested => NestedAbsMax is not null;

    /// <summary>NF4 or FP4.</summary>
    public FourBitType QuantType { get; }

    /// <summary>Elements per absmax block.</summary>
    public int BlockSize { get; }

    /// <summary>The original shape <c>[out, in]</c>.</summary>
    public ReadOnlySpan<long> Shape => _shape;

    /// <summary>Rows of the original weight (<c>out</c>).</summary>
    public long Rows => _shape[0];

    /// <summary>Columns of the original weight (<c>in</c>).</summary>
    public long Columns => _shape[1];

    /// <summary>The original dtype, the default of <see cref="Dequantize"/>.</summary>
    public ScalarType DType { get; }

    /// <summary>The number of weights.</summary>
    public long NumElements => _shape[0] * _shape[1];

    /// <summary>The number of absmax blocks.</summary>
    public long Blocks => (NumElements + BlockSize - 1) / BlockSize;

    /// <summary>The device all tensors live on.</summary>
    public Device Device => Packed.device;

    /// <summary>Bytes held by the tensors (codes, absmax, nested absmax): what the weight costs in memory.</summary>
    public long StorageBytes =>
        Packed.numel() + AbsMax.numel() * AbsMax.ElementSize + (NestedAbsMax?.numel() ?? 0) * 4;

    /// <summary>
    /// Copies every tensor to <paramref name="device"/> and returns a new owner; this instance is unchanged
    /// and still owned by the caller (dispose it to free the source copy).
    /// </summary>
    public QuantizedTensor to(Device device)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        using var scope = torch.NewDisposeScope();
        return new QuantizedTensor(
            Packed.to(device, copy: true).MoveToOuterDisposeScope(), AbsMax.to(device, copy: true).MoveToOuterDisposeScope(),
            NestedAbsMax?.to(device, copy: true).MoveToOuterDisposeScope(), NestedOffset, QuantType, BlockSize, _shape, DType);
    }

    /// <summary>
    /// The f32 block scales for a decode that holds <see cref="DecodeWorkspace.Gate"/>: the stored absmax itself when it
    /// is not double-quantized; otherwise decoded on the host into the shared scales buffer (a CPU weight), with the
    /// same float operations as <see cref="DequantizeAbsMax"/> (a multiply, then an add), or by it elsewhere.
    /// </summary>
    /// <remarks>Per 4-bit matmul the torch path allocated the int32 codes, the looked-up values, the product and its
    /// copy (≈ 3 MiB for one 5632×2048 weight), forward and backward, which kept glibc's arenas churning.</remarks>
    internal Tensor ScalesForDecode()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (NestedAbsMax is null) return AbsMax.alias();
        if (!HostKernels.For(Device) || !AbsMax.is_contiguous() || !NestedAbsMax.is_contiguous())
            return DequantizeAbsMax().contiguous();
        long blocks = AbsMax.numel();
        var scales = DecodeWorkspace.RentScales(blocks, Device);
        ReadOnlySpan<byte> codes = HostKernels.Bytes(AbsMax);
        ReadOnlySpan<float> nested = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(HostKernels.Bytes(NestedAbsMax));
        Span<float> output = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(HostKernels.Bytes(scales));
        ReadOnlySpan<float> map = CodeTables.DynamicSigned;
        float offset = NestedOffset;
        int nestedBlock = FourBitQuantizer.NestedBlockSize;
        for (int i = 0; i < output.Length; i++)
        {
            float product = map[codes[i]] * nested[i / nestedBlock];
            output[i] = product + offset;
        }
        return scales;
    }

    /// <summary>The float32 block scales <c>[blocks]</c>, undoing double quantization when nested.</summary>
    public Tensor DequantizeAbsMax()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (NestedAbsMax is null) return AbsMax.alias();
        using var scope = torch.NewDisposeScope();
        var result = DynamicBlockwise8Bit.Dequantize(AbsMax, NestedAbsMax, FourBitQuantizer.NestedBlockSize)
            .AddInPlace(NestedOffset);
        return result.MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        Packed.Dispose();
        AbsMax.Dispose();
        NestedAbsMax?.Dispose();
        _pairTable?.Dispose();
    }

    // The byte → (high, low) value table on this tensor's device, built once per owner.
    private Tensor PairTable() => _pairTable ??= FourBitCodeBook.PairTable(QuantType, Device).DetachFromDisposeScope();
}
