namespace QuantPeft.Formats.Gguf;

/// <summary>
/// The tensor element types of ggml (the numbering is part of the GGUF format: <c>ggml_type</c> in ggml.h). Only the types
/// QuantPeft writes or asks llama.cpp to write are named.
/// </summary>
public enum GgmlType : uint
{
    /// <summary>IEEE float32.</summary>
    F32 = 0,

    /// <summary>IEEE float16.</summary>
    F16 = 1,

    /// <summary>Blocks of 32: an f16 scale d and 32 4-bit codes q, value = (q − 8)·d.</summary>
    Q4_0 = 2,

    /// <summary>Blocks of 32: an f16 scale d and 32 int8 codes q, value = q·d.</summary>
    Q8_0 = 8,

    /// <summary>k-quant, 256-element super-blocks of 4.5 bits per weight.</summary>
    Q4_K = 12,

    /// <summary>k-quant, 5.5 bits per weight.</summary>
    Q5_K = 13,

    /// <summary>k-quant, 6.5625 bits per weight.</summary>
    Q6_K = 14,

    /// <summary>bfloat16 (the upper half of a float32).</summary>
    BF16 = 30,
}

/// <summary>Block geometry of the <see cref="GgmlType"/>s.</summary>
public static class GgmlTypes
{
    /// <summary>Elements per block (1 for the float types).</summary>
    public static int BlockElements(GgmlType type) => type switch
    {
        GgmlType.F32 or GgmlType.F16 or GgmlType.BF16 => 1,
        GgmlType.Q4_0 or GgmlType.Q8_0 => 32,
        GgmlType.Q4_K or GgmlType.Q5_K or GgmlType.Q6_K => 256,
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "unknown ggml type"),
    };

    /// <summary>Bytes per block.</summary>
    public static int BlockBytes(GgmlType type) => type switch
    {
        GgmlType.F32 => 4,
        GgmlType.F16 or GgmlType.BF16 => 2,
        GgmlType.Q4_0 => 2 + 16,
        GgmlType.Q8_0 => 2 + 32,
        GgmlType.Q4_K => 2 + 2 + 12 + 128,
        GgmlType.Q5_K => 2 + 2 + 12 + 32 + 128,
        GgmlType.Q6_K => 128 + 64 + 16 + 2,
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "unknown ggml type"),
    };

    /// <summary>Bytes of a tensor of <paramref name="elements"/> elements; the row length must be a whole number of blocks.</summary>
    public static long ByteLength(GgmlType type, long elements) => elements / BlockElements(type) * BlockBytes(type);
}
