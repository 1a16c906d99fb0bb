using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using Microsoft.Win32.SafeHandles;
using Kind = QuantPeft.Formats.Safetensors.SafetensorsErrorKind;

namespace QuantPeft.Formats.Safetensors;

/// <summary>
/// Reads and validates a safetensors header with every check of the reference reader
/// (huggingface/safetensors <c>tensor.rs</c>) and a few stricter ones (duplicate names, field types).
/// Sizes are checked before anything is allocated, so a corrupted length field cannot cause a huge allocation.
/// </summary>
internal sealed class SafetensorsHeader
{
    /// <summary>The reference reader's limit on the header length.</summary>
    public const long MaxHeaderLength = 100_000_000;

    private SafetensorsHeader(long headerLength, Dictionary<string, string> metadata, SafetensorsTensorInfo[] tensors)
    {
        HeaderLength = headerLength;
        Metadata = metadata;
        Tensors = tensors;
    }

    public long HeaderLength { get; }
    public Dictionary<string, string> Metadata { get; }

    /// <summary>Tensors in file order (sorted by data offset).</summary>
    public SafetensorsTensorInfo[] Tensors { get; }

    /// <summary>Reads the length field and the header from an open file; never reads the data section.</summary>
    public static SafetensorsHeader Read(string path, SafeFileHandle handle, long fileLength)
    {
        if (fileLength < 8)
            throw new SafetensorsFormatException(Kind.HeaderTooSmall, path, null, $"file is {fileLength} bytes; a safetensors file starts with an 8-byte header length");
        Span<byte> lengthBytes = stackalloc byte[8];
        ReadExactly(path, handle, lengthBytes, 0);
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(lengthBytes);
        if (n > MaxHeaderLength)
            throw new SafetensorsFormatException(Kind.HeaderTooLarge, path, null, $"header length {n} exceeds the limit of {MaxHeaderLength} bytes");
        if (8 + (long)n > fileLength)
            throw new SafetensorsFormatException(Kind.InvalidHeaderLength, path, null, $"header length {n} runs past the end of the {fileLength}-byte file");
        byte[] header = new byte[(int)n];
        ReadExactly(path, handle, header, 8);
        return Parse(path, header, fileLength);
    }

    /// <summary>Validates header bytes (the N bytes after the length field) against a file of <paramref name="fileLength"/> bytes.</summary>
    public static SafetensorsHeader Parse(string path, ReadOnlySpan<byte> header, long fileLength)
    {
        if (!System.Text.Unicode.Utf8.IsValid(header))
            throw new SafetensorsFormatException(Kind.InvalidUtf8, path, null, "header is not valid UTF-8");
        if (header.IsEmpty || header[0] != (byte)'{')
            throw new SafetensorsFormatException(Kind.NotAnObject, path, null, "header JSON must be an object starting with '{'");
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        var entries = new List<Entry>();
        try
        {
            ParseJson(path, header, metadata, entries);
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            throw new SafetensorsFormatException(Kind.InvalidJson, path, null, $"header is not valid JSON ({e.Message})", e);
        }
        long dataSectionOffset = 8 + header.Length;
        return new SafetensorsHeader(header.Length, metadata, Validate(path, entries, dataSectionOffset, fileLength - dataSectionOffset));
    }

    private static void ReadExactly(string path, SafeFileHandle handle, Span<byte> buffer, long offset)
    {
        int done = 0;
        while (done < buffer.Length)
        {
            int read = RandomAccess.Read(handle, buffer[done..], offset + done);
            if (read == 0)
                throw new SafetensorsFormatException(Kind.Io, path, null, $"file ended at byte {offset + done} while reading the header");
            done += read;
        }
    }

    private sealed class Entry(string name)
    {
        public string Name { get; } = name;
        public SafetensorsDType DType;
        public long[] Shape = [];
        public long Begin;
        public long End;
        public long ElementCount;
        public long ByteLength;
    }

    private static void ParseJson(string path, ReadOnlySpan<byte> header, Dictionary<string, string> metadata, List<Entry> entries)
    {
        var reader = new Utf8JsonReader(header, new JsonReaderOptions { CommentHandling = JsonCommentHandling.Disallow });
        reader.Read();
        var names = new HashSet<string>(StringComparer.Ordinal);
        bool sawMetadata = false;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            string name = reader.GetString()!;
            reader.Read();
            if (name == "__metadata__")
            {
                if (sawMetadata)
                    throw new SafetensorsFormatException(Kind.DuplicateName, path, null, "'__metadata__' appears twice in the header");
                sawMetadata = true;
                ParseMetadata(path, ref reader, metadata);
                continue;
            }
            if (!names.Add(name))
                throw new SafetensorsFormatException(Kind.DuplicateName, path, name, "the name appears twice in the header");
            entries.Add(ParseEntry(path, name, ref reader));
        }
        // Consume the rest so that trailing garbage after the object is reported as invalid JSON.
        while (reader.Read()) { }
    }

    private static void ParseMetadata(string path, ref Utf8JsonReader reader, Dictionary<string, string> metadata)
    {
        if (reader.TokenType != JsonTokenType.StartObject)
            throw new SafetensorsFormatException(Kind.InvalidMetadata, path, null, $"'__metadata__' must be an object of strings, found {reader.TokenType}");
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            string key = reader.GetString()!;
            reader.Read();
            if (reader.TokenType != JsonTokenType.String)
                throw new SafetensorsFormatException(Kind.InvalidMetadata, path, null, $"'__metadata__' value of '{key}' must be a string, found {reader.TokenType}");
            if (!metadata.TryAdd(key, reader.GetString()!))
                throw new SafetensorsFormatException(Kind.InvalidMetadata, path, null, $"'__metadata__' key '{key}' appears twice");
        }
    }

    private static Entry ParseEntry(string path, string name, ref Utf8JsonReader reader)
    {
        if (reader.TokenType != JsonTokenType.StartObject)
            throw new SafetensorsFormatException(Kind.NotAnObject, path, name, $"entry must be an object with dtype, shape and data_offsets, found {reader.TokenType}");
        var entry = new Entry(name);
        bool hasDType = false, hasShape = false, hasOffsets = false;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("dtype"u8))
            {
                Once(path, name, "dtype", ref hasDType);
                reader.Read();
                if (reader.TokenType != JsonTokenType.String)
                    throw Field(path, name, "dtype", "a string", reader.TokenType);
                string dtype = reader.GetString()!;
                if (!SafetensorsDTypes.TryParse(dtype, out entry.DType))
                    throw new SafetensorsFormatException(Kind.UnknownDType, path, name, $"dtype '{dtype}' is not one of {string.Join(", ", SafetensorsDTypes.All)}");
            }
            else if (reader.ValueTextEquals("shape"u8))
            {
                Once(path, name, "shape", ref hasShape);
                entry.Shape = ParseShape(path, name, ref reader);
            }
            else if (reader.ValueTextEquals("data_offsets"u8))
            {
                Once(path, name, "data_offsets", ref hasOffsets);
                (entry.Begin, entry.End) = ParseOffsets(path, name, ref reader);
            }
            else
            {
                // Unknown fields are ignored, as the reference reader does.
                reader.Read();
                reader.Skip();
            }
        }
        string? missing = !hasDType ? "dtype" : !hasShape ? "shape" : !hasOffsets ? "data_offsets" : null;
        if (missing is not null)
            throw new SafetensorsFormatException(Kind.MissingField, path, name, $"entry has no '{missing}' field");
        return entry;
    }

    private static void Once(string path, string name, string field, ref bool seen)
    {
        if (seen)
            throw new SafetensorsFormatException(Kind.InvalidField, path, name, $"field '{field}' appears twice");
        seen = true;
    }

    private static SafetensorsFormatException Field(string path, string name, string field, string expected, JsonTokenType found) =>
        new(Kind.InvalidField, path, name, $"'{field}' must be {expected}, found {found}");

    private static long[] ParseShape(string path, string name, ref Utf8JsonReader reader)
    {
        reader.Read();
        if (reader.TokenType != JsonTokenType.StartArray)
            throw Field(path, name, "shape", "an array of integers", reader.TokenType);
        var dims = new List<long>();
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            if (reader.TokenType != JsonTokenType.Number || !IsIntegerLiteral(reader.ValueSpan))
                throw Field(path, name, "shape", "an array of integers", reader.TokenType);
            if (!reader.TryGetInt64(out long d) || d < 0)
                throw new SafetensorsFormatException(Kind.InvalidShape, path, name, $"dimension {Encoding.UTF8.GetString(reader.ValueSpan)} must be a non-negative 64-bit integer");
            dims.Add(d);
        }
        return [.. dims];
    }

    private static (long Begin, long End) ParseOffsets(string path, string name, ref Utf8JsonReader reader)
    {
        reader.Read();
        if (reader.TokenType != JsonTokenType.StartArray)
            throw Field(path, name, "data_offsets", "an array [begin, end]", reader.TokenType);
        Span<long> values = stackalloc long[2];
        int count = 0;
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            if (reader.TokenType != JsonTokenType.Number || !IsIntegerLiteral(reader.ValueSpan))
                throw Field(path, name, "data_offsets", "an array of two integers", reader.TokenType);
            if (count == 2)
                throw new SafetensorsFormatException(Kind.InvalidField, path, name, "'data_offsets' must hold exactly two integers, found more");
            if (!reader.TryGetInt64(out values[count]) || values[count] < 0)
                throw new SafetensorsFormatException(Kind.InvalidOffset, path, name, $"offset {Encoding.UTF8.GetString(reader.ValueSpan)} must be a non-negative 64-bit integer");
            count++;
        }
        if (count != 2)
            throw new SafetensorsFormatException(Kind.InvalidField, path, name, $"'data_offsets' must hold exactly two integers, found {count}");
        return (values[0], values[1]);
    }

    private static bool IsIntegerLiteral(ReadOnlySpan<byte> number) => number.IndexOfAny("."u8 + "eE"u8) < 0;

    private static SafetensorsTensorInfo[] Validate(string path, List<Entry> entries, long dataSectionOffset, long dataLength)
    {
        foreach (var e in entries)
        {
            if (!TryElementCount(e.Shape, out e.ElementCount))
                throw new SafetensorsFormatException(Kind.InvalidShape, path, e.Name, $"element count of shape [{string.Join(", ", e.Shape)}] overflows 64 bits");
            if (!SafetensorsDTypes.TryMultiply(e.ElementCount, e.DType.BitSize(), out long bits))
                throw new SafetensorsFormatException(Kind.InvalidShape, path, e.Name, $"bit count of {e.DType} [{string.Join(", ", e.Shape)}] overflows 64 bits");
            if (bits % 8 != 0)
                throw new SafetensorsFormatException(Kind.MisalignedSlice, path, e.Name, $"{e.DType} [{string.Join(", ", e.Shape)}] is {bits} bits, not a whole number of bytes");
            e.ByteLength = bits / 8;
        }
        // The data must tile [0, dataLength) exactly, whatever order the header lists the entries in.
        entries.Sort((a, b) => a.Begin != b.Begin ? a.Begin.CompareTo(b.Begin) : a.End.CompareTo(b.End));
        var tensors = new SafetensorsTensorInfo[entries.Count];
        long start = 0;
        for (int i = 0; i < entries.Count; i++)
        {
            var e = entries[i];
            if (e.End < e.Begin)
                throw new SafetensorsFormatException(Kind.InvalidOffset, path, e.Name, $"data_offsets [{e.Begin}, {e.End}] end before they begin");
            if (e.Begin != start)
                throw new SafetensorsFormatException(Kind.InvalidOffset, path, e.Name,
                    $"data_offsets [{e.Begin}, {e.End}] begin at {e.Begin} but the previous tensor ends at {start} ({(e.Begin > start ? "gap" : "overlap")})");
            if (e.End - e.Begin != e.ByteLength)
                throw new SafetensorsFormatException(Kind.SizeMismatch, path, e.Name,
                    $"data_offsets [{e.Begin}, {e.End}] hold {e.End - e.Begin} bytes but {e.DType} [{string.Join(", ", e.Shape)}] needs {e.ByteLength}");
            if (e.End > dataLength)
                throw new SafetensorsFormatException(Kind.OutOfFile, path, e.Name,
                    $"data_offsets [{e.Begin}, {e.End}] end past the data section, which holds {dataLength} bytes (file truncated?)");
            tensors[i] = new SafetensorsTensorInfo(e.Name, e.DType, e.Shape, e.Begin, e.End, dataSectionOffset, e.ElementCount);
            start = e.End;
        }
        if (start != dataLength)
            throw new SafetensorsFormatException(Kind.TrailingBytes, path, null, $"the tensors end at data byte {start} but the data section holds {dataLength} bytes");
        return tensors;
    }

    private static bool TryElementCount(long[] shape, out long count)
    {
        count = 1;
        foreach (long d in shape)
            if (!SafetensorsDTypes.TryMultiply(count, d, out count))
                return false;
        return true;
    }
}
