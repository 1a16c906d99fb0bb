using System.Numerics.Tensors;
using System.Runtime.InteropServices;

namespace QuantPeft.Formats.Safetensors;

/// <summary>
/// Widens little-endian tensor bytes to float32. Only exact or value-preserving-as-far-as-float-goes
/// conversions are offered: float types, integers and BOOL; the 4/6/8-bit float formats need their
/// own codecs and are refused.
/// </summary>
internal static class Float32Conversion
{
    public static bool IsSupported(SafetensorsDType dtype) => dtype is SafetensorsDType.F32 or SafetensorsDType.F16
        or SafetensorsDType.BF16 or SafetensorsDType.F64 or SafetensorsDType.BOOL or SafetensorsDType.U8
        or SafetensorsDType.I8 or SafetensorsDType.I16 or SafetensorsDType.U16 or SafetensorsDType.I32
        or SafetensorsDType.U32 or SafetensorsDType.I64 or SafetensorsDType.U64;

    /// <summary>Converts whole elements: <paramref name="source"/> holds exactly <paramref name="destination"/>.Length elements.</summary>
    public static void Convert(SafetensorsDType dtype, ReadOnlySpan<byte> source, Span<float> destination)
    {
        if (!BitConverter.IsLittleEndian)
            throw new PlatformNotSupportedException("safetensors data is little-endian; big-endian hosts are not supported");
        switch (dtype)
        {
            case SafetensorsDType.F32: MemoryMarshal.Cast<byte, float>(source).CopyTo(destination); break;
            case SafetensorsDType.F16: TensorPrimitives.ConvertToSingle(MemoryMarshal.Cast<byte, Half>(source), destination); break;
            case SafetensorsDType.BF16: Bf16ToSingle(MemoryMarshal.Cast<byte, ushort>(source), destination); break;
            case SafetensorsDType.F64: TensorPrimitives.ConvertTruncating(MemoryMarshal.Cast<byte, double>(source), destination); break;
            case SafetensorsDType.BOOL: BoolToSingle(source, destination); break;
            case SafetensorsDType.U8: TensorPrimitives.ConvertTruncating(source, destination); break;
            case SafetensorsDType.I8: TensorPrimitives.ConvertTruncating(MemoryMarshal.Cast<byte, sbyte>(source), destination); break;
            case SafetensorsDType.I16: TensorPrimitives.ConvertTruncating(MemoryMarshal.Cast<byte, short>(source), destination); break;
            case SafetensorsDType.U16: TensorPrimitives.ConvertTruncating(MemoryMarshal.Cast<byte, ushort>(source), destination); break;
            case SafetensorsDType.I32: TensorPrimitives.ConvertTruncating(MemoryMarshal.Cast<byte, int>(source), destination); break;
            case SafetensorsDType.U32: TensorPrimitives.ConvertTruncating(MemoryMarshal.Cast<byte, uint>(source), destination); break;
            case SafetensorsDType.I64: TensorPrimitives.ConvertTruncating(MemoryMarshal.Cast<byte, long>(source), destination); break;
            case SafetensorsDType.U64: TensorPrimitives.ConvertTruncating(MemoryMarshal.Cast<byte, ulong>(source), destination); break;
            default: throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "no float32 conversion");
        }
    }

    // bf16 is the upper half of an f32, so widening is a 16-bit shift (exact, NaN payloads kept).
    private static void Bf16ToSingle(ReadOnlySpan<ushort> source, Span<float> destination)
    {
        Span<uint> bits = MemoryMarshal.Cast<float, uint>(destination);
        for (int i = 0; i < source.Length; i++)
            bits[i] = (uint)source[i] << 16;
    }

    // torch writes bool as 0/1, but any non-zero byte is true.
    private static void BoolToSingle(ReadOnlySpan<byte> source, Span<float> destination)
    {
        for (int i = 0; i < source.Length; i++)
            destination[i] = source[i] != 0 ? 1f : 0f;
    }
}
