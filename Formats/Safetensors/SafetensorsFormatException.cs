namespace QuantPeft.Formats.Safetensors;

/// <summary>What is wrong with a safetensors file or a sharded checkpoint.</summary>
public enum SafetensorsErrorKind
{
    /// <summary>The file is shorter than the 8-byte header length field.</summary>
    HeaderTooSmall,
    /// <summary>The header length exceeds the 100,000,000-byte limit of the reference reader.</summary>
    HeaderTooLarge,
    /// <summary>The header length points past the end of the file.</summary>
    InvalidHeaderLength,
    /// <summary>The header is not valid UTF-8.</summary>
    InvalidUtf8,
    /// <summary>The header is not valid JSON.</summary>
    InvalidJson,
    /// <summary>The header JSON is not an object (or an entry is not an object).</summary>
    NotAnObject,
    /// <summary>A tensor name (or weight_map key) appears twice.</summary>
    DuplicateName,
    /// <summary>An entry lacks <c>dtype</c>, <c>shape</c> or <c>data_offsets</c>.</summary>
    MissingField,
    /// <summary>A field has the wrong JSON type or arity.</summary>
    InvalidField,
    /// <summary>The dtype string is not a safetensors dtype.</summary>
    UnknownDType,
    /// <summary>A dimension is negative, or the element or bit count overflows 64 bits.</summary>
    InvalidShape,
    /// <summary>The tensor's bit count is not a whole number of bytes.</summary>
    MisalignedSlice,
    /// <summary>The byte range does not hold exactly dtype × shape bytes.</summary>
    SizeMismatch,
    /// <summary>The byte ranges are not contiguous from 0 (gap, overlap, reversal, negative).</summary>
    InvalidOffset,
    /// <summary>A byte range ends past the end of the file.</summary>
    OutOfFile,
    /// <summary>The file holds bytes after the last tensor.</summary>
    TrailingBytes,
    /// <summary><c>__metadata__</c> is not a map of string to string.</summary>
    InvalidMetadata,
    /// <summary>A shard named by the index (or the checkpoint itself) does not exist.</summary>
    MissingShard,
    /// <summary>A tensor is stored in more than one shard.</summary>
    DuplicateShardTensor,
    /// <summary>The index and the shards disagree about where a tensor lives.</summary>
    ShardMismatch,
    /// <summary><c>model.safetensors.index.json</c> is malformed.</summary>
    InvalidIndex,
    /// <summary>The requested tensor is not in the file or checkpoint.</summary>
    TensorNotFound,
    /// <summary>The tensor's dtype cannot be converted to the requested element type.</summary>
    UnsupportedConversion,
    /// <summary>The file could not be opened or read.</summary>
    Io,
}

/// <summary>
/// A safetensors file or sharded checkpoint is malformed, or asked for something it does not hold.
/// The message always starts with the file, then the tensor when one is involved, then what was
/// expected and what was found.
/// </summary>
public sealed class SafetensorsFormatException : QuantPeftException
{
    /// <summary>Creates the exception; the message is composed from the file, tensor and detail.</summary>
    /// <param name="kind">What is wrong.</param>
    /// <param name="filePath">The file at fault.</param>
    /// <param name="tensorName">The tensor at fault, or null when the problem is file-wide.</param>
    /// <param name="detail">What was expected and what was found.</param>
    /// <param name="inner">The underlying error, if any.</param>
    public SafetensorsFormatException(SafetensorsErrorKind kind, string filePath, string? tensorName, string detail, Exception? inner = null)
        : base(Compose(filePath, tensorName, detail), inner!)
    {
        Kind = kind;
        FilePath = filePath;
        TensorName = tensorName;
        Detail = detail;
    }

    /// <summary>What is wrong.</summary>
    public SafetensorsErrorKind Kind { get; }

    /// <summary>The file at fault (as the caller named it).</summary>
    public string FilePath { get; }

    /// <summary>The tensor at fault, or null for file-wide problems.</summary>
    public string? TensorName { get; }

    /// <summary>The message without the file and tensor prefix.</summary>
    public string Detail { get; }

    private static string Compose(string filePath, string? tensorName, string detail) =>
        tensorName is null ? $"'{filePath}': {detail}" : $"'{filePath}': tensor '{tensorName}': {detail}";
}
