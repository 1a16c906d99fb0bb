namespace QuantPeft.Formats.Safetensors;

/// <summary>
/// Element types of the safetensors format, named as they appear in the header's <c>dtype</c> field.
/// The declaration order is the reference implementation's alignment order (smallest first); the
/// writer sorts tensors by it, descending, so every tensor's data stays aligned to its element size.
/// </summary>
public enum SafetensorsDType
{
    /// <summary>Boolean stored in one byte.</summary>
    BOOL,
    /// <summary>4-bit float (E2M1), two per byte.</summary>
    F4,
    /// <summary>6-bit float with 2 exponent and 3 mantissa bits.</summary>
    F6_E2M3,
    /// <summary>6-bit float with 3 exponent and 2 mantissa bits.</summary>
    F6_E3M2,
    /// <summary>Unsigned 8-bit integer (bitsandbytes stores packed 4-bit weights as U8).</summary>
    U8,
    /// <summary>Signed 8-bit integer.</summary>
    I8,
    /// <summary>8-bit float E5M2.</summary>
    F8_E5M2,
    /// <summary>8-bit float E4M3 (torch <c>float8_e4m3fn</c>).</summary>
    F8_E4M3,
    /// <summary>8-bit exponent-only scale (E8M0).</summary>
    F8_E8M0,
    /// <summary>8-bit float E4M3, finite, unsigned zero.</summary>
    F8_E4M3FNUZ,
    /// <summary>8-bit float E5M2, finite, unsigned zero.</summary>
    F8_E5M2FNUZ,
    /// <summary>Signed 16-bit integer.</summary>
    I16,
    /// <summary>Unsigned 16-bit integer.</summary>
    U16,
    /// <summary>IEEE half precision.</summary>
    F16,
    /// <summary>bfloat16.</summary>
    BF16,
    /// <summary>Signed 32-bit integer.</summary>
    I32,
    /// <summary>Unsigned 32-bit integer.</summary>
    U32,
    /// <summary>IEEE single precision.</summary>
    F32,
    /// <summary>Complex of two F32.</summary>
    C64,
    /// <summary>IEEE double precision.</summary>
    F64,
    /// <summary>Signed 64-bit integer.</summary>
    I64,
    /// <summary>Unsigned 64-bit integer.</summary>
    U64,
}

/// <summary>Sizes and names of <see cref="SafetensorsDType"/> values.</summary>
public static class SafetensorsDTypes
{
    private static readonly Dictionary<string, SafetensorsDType> ByName =
        Enum.GetValues<SafetensorsDType>().ToDictionary(d => d.ToString(), StringComparer.Ordinal);

    /// <summary>Every dtype, in the format's alignment order.</summary>
    public static IReadOnlyList<SafetensorsDType> All { get; } = Enum.GetValues<SafetensorsDType>();

    /// <summary>Bits per element (4 and 6 for the sub-byte floats, so sizes are computed in bits).</summary>
    public static int BitSize(this SafetensorsDType dtype) => dtype switch
    {
        SafetensorsDType.F4 => 4,
        SafetensorsDType.F6_E2M3 or SafetensorsDType.F6_E3M2 => 6,
        SafetensorsDType.BOOL or SafetensorsDType.U8 or SafetensorsDType.I8 or SafetensorsDType.F8_E5M2
            or SafetensorsDType.F8_E4M3 or SafetensorsDType.F8_E8M0 or SafetensorsDType.F8_E4M3FNUZ
            or SafetensorsDType.F8_E5M2FNUZ => 8,
        SafetensorsDType.I16 or SafetensorsDType.U16 or SafetensorsDType.F16 or SafetensorsDType.BF16 => 16,
        SafetensorsDType.I32 or SafetensorsDType.U32 or SafetensorsDType.F32 => 32,
        SafetensorsDType.C64 or SafetensorsDType.F64 or SafetensorsDType.I64 or SafetensorsDType.U64 => 64,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "not a safetensors dtype"),
    };

    /// <summary>The header spelling of the dtype (e.g. <c>BF16</c>).</summary>
    public static string HeaderName(this SafetensorsDType dtype) => dtype.ToString();

    /// <summary>Parses a header <c>dtype</c> string; exact, case-sensitive match as in the reference reader.</summary>
    public static bool TryParse(string name, out SafetensorsDType dtype) => ByName.TryGetValue(name, out dtype);

    /// <summary>
    /// Bytes taken by <paramref name="shape"/> elements of <paramref name="dtype"/> (row-major, no padding).
    /// </summary>
    /// <exception cref="ArgumentException">A dimension is negative, the size overflows 64 bits, or the
    /// bit count is not a whole number of bytes (an odd number of F4 elements).</exception>
    public static long ByteLength(this SafetensorsDType dtype, ReadOnlySpan<long> shape)
    {
        long count = 1;
        foreach (long d in shape)
        {
            if (d < 0 || !TryMultiply(count, d, out count))
                throw new ArgumentException($"shape [{string.Join(", ", shape.ToArray())}] has a negative dimension or overflows", nameof(shape));
        }
        if (!TryMultiply(count, dtype.BitSize(), out long bits) || bits % 8 != 0)
            throw new ArgumentException($"{dtype} [{string.Join(", ", shape.ToArray())}] is not a whole number of bytes or overflows", nameof(shape));
        return bits / 8;
    }

    /// <summary>Multiplies two non-negative values; false when the product does not fit in a long.</summary>
    internal static bool TryMultiply(long a, long b, out long product)
    {
        long high = Math.BigMul(a, b, out long low);
        product = low;
        return high == 0 && low >= 0;
    }
}
