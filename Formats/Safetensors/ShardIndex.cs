using System.Text.Json;
using Kind = QuantPeft.Formats.Safetensors.SafetensorsErrorKind;

namespace QuantPeft.Formats.Safetensors;

/// <summary>
/// A parsed <c>model.safetensors.index.json</c>: which shard file holds which tensor. Parsed with a
/// token reader so a tensor listed twice is an error rather than silently "last one wins".
/// </summary>
internal sealed class ShardIndex
{
    private ShardIndex(Dictionary<string, string> weightMap, long? totalSize)
    {
        WeightMap = weightMap;
        TotalSize = totalSize;
    }

    /// <summary>Tensor name → shard file name, relative to the index's folder, in index order.</summary>
    public Dictionary<string, string> WeightMap { get; }

    /// <summary><c>metadata.total_size</c> when present as an integer.</summary>
    public long? TotalSize { get; }

    public static ShardIndex Read(string path)
    {
        byte[] bytes;
        try
        {
            long length = new FileInfo(path).Length;
            if (length > SafetensorsHeader.MaxHeaderLength)
                throw new SafetensorsFormatException(Kind.InvalidIndex, path, null, $"index is {length} bytes; more than {SafetensorsHeader.MaxHeaderLength} is not a weight map");
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            var kind = e is FileNotFoundException or DirectoryNotFoundException ? Kind.MissingShard : Kind.Io;
            throw new SafetensorsFormatException(kind, path, null, $"cannot read the index ({e.Message})", e);
        }
        try
        {
            return Parse(path, bytes);
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            throw new SafetensorsFormatException(Kind.InvalidIndex, path, null, $"index is not valid JSON ({e.Message})", e);
        }
    }

    private static ShardIndex Parse(string path, byte[] bytes)
    {
        var reader = new Utf8JsonReader(bytes);
        if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            throw new SafetensorsFormatException(Kind.InvalidIndex, path, null, "index must be a JSON object with a 'weight_map'");
        Dictionary<string, string>? map = null;
        long? totalSize = null;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("weight_map"u8))
            {
                reader.Read();
                if (map is not null || reader.TokenType != JsonTokenType.StartObject)
                    throw new SafetensorsFormatException(Kind.InvalidIndex, path, null, "'weight_map' must appear once, as an object of tensor name to shard file");
                map = ReadWeightMap(path, ref reader);
            }
            else if (reader.ValueTextEquals("metadata"u8))
            {
                reader.Read();
                if (reader.TokenType != JsonTokenType.StartObject)
                    throw new SafetensorsFormatException(Kind.InvalidIndex, path, null, $"'metadata' must be an object, found {reader.TokenType}");
                while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
                {
                    bool isTotal = reader.ValueTextEquals("total_size"u8);
                    reader.Read();
                    if (isTotal && reader.TokenType == JsonTokenType.Number && reader.TryGetInt64(out long size))
                        totalSize = size;
                    reader.Skip();
                }
            }
            else
            {
                reader.Read();
                reader.Skip();
            }
        }
        while (reader.Read()) { }
        if (map is null || map.Count == 0)
            throw new SafetensorsFormatException(Kind.InvalidIndex, path, null, "index has no tensors in 'weight_map'");
        return new ShardIndex(map, totalSize);
    }

    private static Dictionary<string, string> ReadWeightMap(string path, ref Utf8JsonReader reader)
    {
        var map = new Dictionary<string, string>(StringComparer.Ordinal);
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            string tensor = reader.GetString()!;
            reader.Read();
            if (reader.TokenType != JsonTokenType.String)
                throw new SafetensorsFormatException(Kind.InvalidIndex, path, tensor, $"weight_map value must be a shard file name, found {reader.TokenType}");
            string shard = reader.GetString()!;
            if (shard.Length == 0 || System.IO.Path.IsPathRooted(shard) || shard.Split('/', '\\').Contains(".."))
                throw new SafetensorsFormatException(Kind.InvalidIndex, path, tensor, $"shard '{shard}' must be a file name inside the checkpoint folder");
            if (!map.TryAdd(tensor, shard))
                throw new SafetensorsFormatException(Kind.DuplicateName, path, tensor, "the tensor is listed twice in weight_map");
        }
        return map;
    }
}
