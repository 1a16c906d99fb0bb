using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using QuantPeft.Quant.Codecs;

namespace QuantPeft.Quant.Kernels;

/// <summary>
/// The codec on an ILGPU accelerator: CUDA when a CUDA device is present, otherwise ILGPU's CPU accelerator
/// (which tests use). Bit-identical to <see cref="ReferenceCodec"/>; see <see cref="IlgpuKernels"/> for why.
/// Each call uploads its inputs, runs the kernel and downloads the outputs; it owns the ILGPU context and accelerator.
/// </summary>
public sealed class IlgpuCodec : IBlockwiseCodec, IDisposable
{
    private readonly Context _context;
    private readonly Accelerator _accelerator;
    private readonly Action<Index1D, ArrayView<float>, int, int, ArrayView<float>, ArrayView<int>, int, int, ArrayView<byte>, ArrayView<float>> _encodeFourBit;
    private readonly Action<Index1D, ArrayView<float>, int, int, ArrayView<float>, ArrayView<byte>, ArrayView<float>> _encodeDynamic;
    private readonly Action<Index1D, ArrayView<byte>, ArrayView<float>, ArrayView<float>, int, int, ArrayView<float>> _decodeSingle;
    private readonly Action<Index1D, ArrayView<byte>, ArrayView<float>, ArrayView<float>, int, int, ArrayView<ushort>> _decodeBFloat16;
    private readonly Action<Index1D, ArrayView<byte>, ArrayView<float>, ArrayView<float>, int, int, ArrayView<ushort>> _decodeHalf;
    private readonly Action<Index1D, ArrayView<byte>, ArrayView<float>, ArrayView<float>, int, ArrayView<float>> _decodeDynamic;

    private IlgpuCodec(bool cpuOnly)
    {
        _context = Context.Create(builder =>
        {
            if (cpuOnly) builder.CPU(); else builder.Default();
        });
        Device? cuda = cpuOnly ? null : _context.Devices.FirstOrDefault(d => d.AcceleratorType == AcceleratorType.Cuda);
        _accelerator = cuda is not null ? cuda.CreateAccelerator(_context) : _context.CreateCPUAccelerator(0);
        _encodeFourBit = _accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, int, int, ArrayView<float>, ArrayView<int>, int, int, ArrayView<byte>, ArrayView<float>>(IlgpuKernels.EncodeFourBit);
        _encodeDynamic = _accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, int, int, ArrayView<float>, ArrayView<byte>, ArrayView<float>>(IlgpuKernels.EncodeDynamic);
        _decodeSingle = _accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<byte>, ArrayView<float>, ArrayView<float>, int, int, ArrayView<float>>(IlgpuKernels.DecodeFourBitToSingle);
        _decodeBFloat16 = _accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<byte>, ArrayView<float>, ArrayView<float>, int, int, ArrayView<ushort>>(IlgpuKernels.DecodeFourBitToBFloat16);
        _decodeHalf = _accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<byte>, ArrayView<float>, ArrayView<float>, int, int, ArrayView<ushort>>(IlgpuKernels.DecodeFourBitToHalf);
        _decodeDynamic = _accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<byte>, ArrayView<float>, ArrayView<float>, int, ArrayView<float>>(IlgpuKernels.DecodeDynamic);
    }

    /// <summary>A codec on the first CUDA device, or on ILGPU's CPU accelerator when there is none.</summary>
    public static IlgpuCodec CreatePreferred() => new(cpuOnly: false);

    /// <summary>A codec on ILGPU's CPU accelerator (tests; machines without a GPU).</summary>
    public static IlgpuCodec CreateCpu() => new(cpuOnly: true);

    /// <summary>The accelerator's name and type, e.g. for reports.</summary>
    public string DeviceName => $"{_accelerator.AcceleratorType}: {_accelerator.Name}";

    /// <summary>Whether the kernels run on a CUDA device.</summary>
    public bool IsCuda => _accelerator.AcceleratorType == AcceleratorType.Cuda;

    /// <inheritdoc/>
    public void QuantizeFourBit(ReadOnlySpan<float> input, FourBitType type, int blockSize, Span<byte> packed, Span<float> absmax)
    {
        CodecChecks.FourBit(input.Length, blockSize, packed.Length, absmax.Length);
        CodeBook book = CodeBook.ForFourBit(type);
        int[] magnitudeCodes = [.. book.MagnitudeCodes.ToArray().Select(c => (int)c)];
        using var x = Upload(input);
        using var thresholds = Upload(book.Thresholds);
        using var magnitudes = Upload<int>(magnitudeCodes);
        using var p = _accelerator.Allocate1D<byte>(packed.Length);
        using var a = _accelerator.Allocate1D<float>(absmax.Length);
        if (absmax.Length > 0)
            _encodeFourBit(absmax.Length, x.View, input.Length, blockSize, thresholds.View, magnitudes.View, book.IsSignMagnitude ? 1 : 0, book.Encode(0f), p.View, a.View);
        _accelerator.Synchronize();
        Contiguous(a).CopyToCPU(absmax);
        ThrowIfNonFinite(input, absmax, blockSize);
        Contiguous(p).CopyToCPU(packed);
    }

    /// <inheritdoc/>
    public void QuantizeFourBit(ReadOnlySpan<ushort> input, FourBitType type, int blockSize, Span<byte> packed, Span<float> absmax)
    {
        var widened = new float[input.Length];
        for (int i = 0; i < widened.Length; i++) widened[i] = FloatBits.BFloat16ToSingle(input[i]);
        QuantizeFourBit(widened, type, blockSize, packed, absmax);
    }

    /// <inheritdoc/>
    public void QuantizeFourBit(ReadOnlySpan<System.Half> input, FourBitType type, int blockSize, Span<byte> packed, Span<float> absmax)
    {
        var widened = new float[input.Length];
        System.Numerics.Tensors.TensorPrimitives.ConvertToSingle(input, widened);
        QuantizeFourBit(widened, type, blockSize, packed, absmax);
    }

    /// <inheritdoc/>
    public void DequantizeFourBit(ReadOnlySpan<byte> packed, ReadOnlySpan<float> absmax, FourBitType type, int blockSize, Span<float> output)
    {
        CodecChecks.FourBit(output.Length, blockSize, packed.Length, absmax.Length);
        using var p = Upload(packed);
        using var a = Upload(absmax);
        using var t = Upload(CodeBook.ForFourBit(type).Values);
        using var o = _accelerator.Allocate1D<float>(output.Length);
        if (packed.Length > 0) _decodeSingle(packed.Length, p.View, a.View, t.View, output.Length, blockSize, o.View);
        _accelerator.Synchronize();
        Contiguous(o).CopyToCPU(output);
    }

    /// <inheritdoc/>
    public void DequantizeFourBit(ReadOnlySpan<byte> packed, ReadOnlySpan<float> absmax, FourBitType type, int blockSize, Span<ushort> output)
    {
        CodecChecks.FourBit(output.Length, blockSize, packed.Length, absmax.Length);
        DecodeSixteen(packed, absmax, type, blockSize, output, _decodeBFloat16);
    }

    /// <inheritdoc/>
    public void DequantizeFourBit(ReadOnlySpan<byte> packed, ReadOnlySpan<float> absmax, FourBitType type, int blockSize, Span<System.Half> output)
    {
        CodecChecks.FourBit(output.Length, blockSize, packed.Length, absmax.Length);
        DecodeSixteen(packed, absmax, type, blockSize, System.Runtime.InteropServices.MemoryMarshal.Cast<System.Half, ushort>(output), _decodeHalf);
    }

    /// <inheritdoc/>
    public void QuantizeDynamic(ReadOnlySpan<float> input, DynamicMap map, int blockSize, Span<byte> codes, Span<float> absmax)
    {
        CodecChecks.Dynamic(input.Length, blockSize, codes.Length, absmax.Length);
        using var x = Upload(input);
        using var thresholds = Upload(map.Book().Thresholds);
        using var c = _accelerator.Allocate1D<byte>(codes.Length);
        using var a = _accelerator.Allocate1D<float>(absmax.Length);
        if (absmax.Length > 0) _encodeDynamic(absmax.Length, x.View, input.Length, blockSize, thresholds.View, c.View, a.View);
        _accelerator.Synchronize();
        Contiguous(a).CopyToCPU(absmax);
        ThrowIfNonFinite(input, absmax, blockSize);
        Contiguous(c).CopyToCPU(codes);
    }

    /// <inheritdoc/>
    public void DequantizeDynamic(ReadOnlySpan<byte> codes, ReadOnlySpan<float> absmax, DynamicMap map, int blockSize, Span<float> output)
    {
        CodecChecks.Dynamic(output.Length, blockSize, codes.Length, absmax.Length);
        using var c = Upload(codes);
        using var a = Upload(absmax);
        using var t = Upload(map.Book().Values);
        using var o = _accelerator.Allocate1D<float>(output.Length);
        if (output.Length > 0) _decodeDynamic(output.Length, c.View, a.View, t.View, blockSize, o.View);
        _accelerator.Synchronize();
        Contiguous(o).CopyToCPU(output);
    }

    /// <summary>Releases the accelerator and the ILGPU context.</summary>
    public void Dispose()
    {
        _accelerator.Dispose();
        _context.Dispose();
    }

    private void DecodeSixteen(ReadOnlySpan<byte> packed, ReadOnlySpan<float> absmax, FourBitType type, int blockSize, Span<ushort> output,
        Action<Index1D, ArrayView<byte>, ArrayView<float>, ArrayView<float>, int, int, ArrayView<ushort>> kernel)
    {
        using var p = Upload(packed);
        using var a = Upload(absmax);
        using var t = Upload(CodeBook.ForFourBit(type).Values);
        using var o = _accelerator.Allocate1D<ushort>(output.Length);
        if (packed.Length > 0) kernel(packed.Length, p.View, a.View, t.View, output.Length, blockSize, o.View);
        _accelerator.Synchronize();
        Contiguous(o).CopyToCPU(output);
    }

    private MemoryBuffer1D<T, Stride1D.Dense> Upload<T>(ReadOnlySpan<T> values) where T : unmanaged
    {
        var buffer = _accelerator.Allocate1D<T>(Math.Max(values.Length, 1));
        if (values.Length > 0) Contiguous(buffer).SubView(0, values.Length).CopyFromCPU(values);
        return buffer;
    }

    private static ArrayView<T> Contiguous<T>(MemoryBuffer1D<T, Stride1D.Dense> buffer) where T : unmanaged => buffer.View;

    // The kernels mark a block holding NaN/±Inf with a NaN absmax; report it the way the CPU codecs do.
    private static void ThrowIfNonFinite(ReadOnlySpan<float> input, ReadOnlySpan<float> absmax, int blockSize)
    {
        for (int b = 0; b < absmax.Length; b++)
            if (float.IsNaN(absmax[b]))
            {
                int start = b * blockSize;
                BlockScale.ThrowNonFinite(input.Slice(start, Math.Min(blockSize, input.Length - start)), start);
            }
    }
}
