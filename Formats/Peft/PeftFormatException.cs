namespace QuantPeft.Formats.Peft;

/// <summary>What is wrong with a PEFT adapter folder.</summary>
public enum PeftErrorKind
{
    /// <summary><c>adapter_config.json</c> is missing or unreadable.</summary>
    MissingConfig,
    /// <summary><c>adapter_model.safetensors</c> is missing (a legacy <c>adapter_model.bin</c> is not read).</summary>
    MissingWeights,
    /// <summary>The config is not valid JSON, not an object, or repeats a key.</summary>
    InvalidJson,
    /// <summary>The config has no <c>peft_type</c>, the one key PEFT requires.</summary>
    MissingPeftType,
    /// <summary>A config key has the wrong type or an invalid value.</summary>
    InvalidField,
    /// <summary>The adapter is not a LoRA adapter.</summary>
    UnsupportedPeftType,
    /// <summary>A <c>lora_A</c> has no <c>lora_B</c> or the reverse.</summary>
    UnpairedLoraTensor,
    /// <summary>LoRA tensors of one module have inconsistent or wrong-rank shapes.</summary>
    ShapeMismatch,
    /// <summary>A module's rank differs from <c>r</c> / <c>rank_pattern</c> in the config.</summary>
    RankMismatch,
    /// <summary>The config asks for DoRA but a module has no <c>lora_magnitude_vector</c>.</summary>
    MissingMagnitude,
}

/// <summary>
/// A PEFT adapter folder is missing a file, or its config or tensors are malformed or inconsistent.
/// The message starts with the file, then the key or tensor at fault.
/// </summary>
public sealed class PeftFormatException : QuantPeftException
{
    /// <summary>Creates the exception; the message is composed from the file, key and detail.</summary>
    /// <param name="kind">What is wrong.</param>
    /// <param name="filePath">The file (or folder) at fault.</param>
    /// <param name="key">The config key or tensor name at fault, or null.</param>
    /// <param name="detail">What was expected and what was found.</param>
    /// <param name="inner">The underlying error, if any.</param>
    public PeftFormatException(PeftErrorKind kind, string filePath, string? key, string detail, Exception? inner = null)
        : base(key is null ? $"'{filePath}': {detail}" : $"'{filePath}': '{key}': {detail}", inner!)
    {
        Kind = kind;
        FilePath = filePath;
        Key = key;
    }

    /// <summary>What is wrong.</summary>
    public PeftErrorKind Kind { get; }

    /// <summary>The file (or folder) at fault.</summary>
    public string FilePath { get; }

    /// <summary>The config key or tensor name at fault, or null.</summary>
    public string? Key { get; }
}
