namespace QuantPeft.Quant.Codecs;

/// <summary>The floating-point element types a quantized tensor can come from and be decoded to.</summary>
public enum ElementType
{
    /// <summary>IEEE binary32 (<c>torch.float32</c>).</summary>
    Float32,

    /// <summary>bfloat16 (<c>torch.bfloat16</c>), carried as its raw 16 bits in a <see cref="ushort"/>.</summary>
    BFloat16,

    /// <summary>IEEE binary16 (<c>torch.float16</c>), carried as <see cref="Half"/>.</summary>
    Float16,
}

/// <summary>Names and sizes of <see cref="ElementType"/> as torch and safetensors spell them.</summary>
public static class ElementTypeNames
{
    /// <summary>The torch dtype name without the <c>torch.</c> prefix, as bitsandbytes writes it in its JSON.</summary>
    public static string TorchName(this ElementType type) => type switch
    {
        ElementType.Float32 => "float32",
        ElementType.BFloat16 => "bfloat16",
        ElementType.Float16 => "float16",
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "unknown element type"),
    };

    /// <summary>Bytes per element.</summary>
    public static int Size(this ElementType type) => type == ElementType.Float32 ? 4 : 2;

    /// <summary>Parses a torch dtype name (<c>float32</c>, <c>bfloat16</c>, <c>float16</c>; also <c>torch.</c>-prefixed).</summary>
    /// <param name="name">The name found in a file.</param>
    /// <param name="field">The field it came from, for the error message.</param>
    /// <exception cref="QuantInputException">The name is not one of the three.</exception>
    public static ElementType ParseTorchName(string name, string field)
    {
        string bare = name.StartsWith("torch.", StringComparison.Ordinal) ? name[6..] : name;
        return bare switch
        {
            "float32" or "float" => ElementType.Float32,
            "bfloat16" => ElementType.BFloat16,
            "float16" or "half" => ElementType.Float16,
            _ => throw new QuantInputException(
                $"{field}: expected a dtype of float32, bfloat16 or float16, found '{name}'"),
        };
    }
}
