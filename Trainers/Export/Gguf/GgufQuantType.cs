using QuantPeft.Formats.Gguf;

namespace QuantPeft.Trainers.Export.Gguf;

/// <summary>The <c>--quant</c> choices of a GGUF export.</summary>
public enum GgufQuantType
{
    /// <summary>Matrices in float16; norms and other vectors float32.</summary>
    F16,

    /// <summary>Matrices in bfloat16; norms and other vectors float32.</summary>
    BF16,

    /// <summary>Matrices in Q8_0 (8.5 bits per weight).</summary>
    Q8_0,

    /// <summary>Matrices in Q4_0 (4.5 bits per weight).</summary>
    Q4_0,

    /// <summary>llama.cpp's Q4_K_M mix (Q4_K, with Q6_K for half of the attention v and FFN down matrices and the output).</summary>
    Q4_K_M,

    /// <summary>llama.cpp's Q5_K_M mix.</summary>
    Q5_K_M,

    /// <summary>Q6_K throughout.</summary>
    Q6_K,
}

/// <summary>Names, file types and writers of the <see cref="GgufQuantType"/>s.</summary>
public static class GgufQuantTypes
{
    /// <summary>The spellings <c>--quant</c> accepts, in order.</summary>
    public static IReadOnlyList<string> Names { get; } = ["f16", "bf16", "q8_0", "q4_0", "q4_k_m", "q5_k_m", "q6_k"];

    /// <summary>Parses a <c>--quant</c> value (case-insensitive).</summary>
    /// <exception cref="ExportException">Not one of <see cref="Names"/>.</exception>
    public static GgufQuantType Parse(string text)
    {
        int at = Names.ToList().FindIndex(n => string.Equals(n, text.Trim(), StringComparison.OrdinalIgnoreCase));
        if (at < 0) throw new ExportException($"--quant: expected one of {string.Join(", ", Names)}; found '{text}'");
        return (GgufQuantType)at;
    }

    /// <summary>The spelling of <paramref name="type"/>.</summary>
    public static string Name(GgufQuantType type) => Names[(int)type];

    /// <summary>Whether llama.cpp's quantizer produces this type (from a lossless intermediate file) rather than QuantPeft itself.</summary>
    public static bool IsKQuant(GgufQuantType type) => type is GgufQuantType.Q4_K_M or GgufQuantType.Q5_K_M or GgufQuantType.Q6_K;

    /// <summary>The element type QuantPeft writes the matrices in (for a k-quant: none).</summary>
    public static GgmlType MatrixType(GgufQuantType type) => type switch
    {
        GgufQuantType.F16 => GgmlType.F16,
        GgufQuantType.BF16 => GgmlType.BF16,
        GgufQuantType.Q8_0 => GgmlType.Q8_0,
        GgufQuantType.Q4_0 => GgmlType.Q4_0,
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "k-quants are written by llama.cpp's quantizer"),
    };

    /// <summary><c>general.file_type</c>: llama.cpp's <c>llama_ftype</c> number.</summary>
    public static uint FileType(GgufQuantType type) => type switch
    {
        GgufQuantType.F16 => 1,
        GgufQuantType.BF16 => 32,
        GgufQuantType.Q8_0 => 7,
        GgufQuantType.Q4_0 => 2,
        GgufQuantType.Q4_K_M => 15,
        GgufQuantType.Q5_K_M => 17,
        _ => 18,
    };
}
