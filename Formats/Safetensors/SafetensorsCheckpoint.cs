using Kind = QuantPeft.Formats.Safetensors.SafetensorsErrorKind;

namespace QuantPeft.Formats.Safetensors;

/// <summary>
/// A model's weights as Hugging Face stores them: one <c>.safetensors</c> file, or shards listed by
/// <c>model.safetensors.index.json</c>. Opening validates every shard's header and the index against
/// them (every shard exists, every tensor lives in exactly one shard, where the index says), and
/// reads no tensor data.
/// </summary>
public sealed class SafetensorsCheckpoint : IDisposable
{
    /// <summary>Name of the shard index in a model folder.</summary>
    public const string IndexFileName = "model.safetensors.index.json";

    /// <summary>Name of an unsharded checkpoint in a model folder.</summary>
    public const string SingleFileName = "model.safetensors";

    private readonly SafetensorsFile[] _shards;
    private readonly Dictionary<string, (SafetensorsFile File, SafetensorsTensorInfo Info)> _byName;

    private SafetensorsCheckpoint(string? indexPath, long? indexTotalSize, SafetensorsFile[] shards)
    {
        IndexPath = indexPath;
        IndexTotalSize = indexTotalSize;
        _shards = shards;
        _byName = new(StringComparer.Ordinal);
        foreach (var shard in shards)
            foreach (var t in shard.Tensors)
                if (!_byName.TryAdd(t.Name, (shard, t)))
                    throw new SafetensorsFormatException(Kind.DuplicateShardTensor, shard.Path, t.Name,
                        $"the tensor is also stored in '{_byName[t.Name].File.Path}'");
        Tensors = shards.SelectMany(s => s.Tensors).ToArray();
    }

    /// <summary>
    /// Opens a checkpoint from a <c>.safetensors</c> file, a <c>model.safetensors.index.json</c>, or a
    /// folder holding either (the index wins; otherwise <c>model.safetensors</c>, otherwise the folder's
    /// only <c>.safetensors</c> file).
    /// </summary>
    /// <exception cref="SafetensorsFormatException">Something is missing, malformed or inconsistent.</exception>
    public static SafetensorsCheckpoint Open(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (Directory.Exists(path))
            return Open(ResolveFolder(path));
        if (path.EndsWith(".json", StringComparison.OrdinalIgnoreCase))
            return OpenIndex(path);
        var file = SafetensorsFile.Open(path);
        return new SafetensorsCheckpoint(null, null, [file]);
    }

    private static string ResolveFolder(string folder)
    {
        string index = System.IO.Path.Combine(folder, IndexFileName);
        if (File.Exists(index))
            return index;
        string single = System.IO.Path.Combine(folder, SingleFileName);
        if (File.Exists(single))
            return single;
        var candidates = Directory.GetFiles(folder, "*.safetensors");
        if (candidates.Length == 1)
            return candidates[0];
        throw new SafetensorsFormatException(Kind.MissingShard, folder, null, candidates.Length == 0
            ? $"folder has neither {IndexFileName} nor any .safetensors file"
            : $"folder has no {IndexFileName} and {candidates.Length} .safetensors files; open one of them or add an index");
    }

    private static SafetensorsCheckpoint OpenIndex(string indexPath)
    {
        var index = ShardIndex.Read(indexPath);
        string folder = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(indexPath))!;
        var shardNames = index.WeightMap.Values.Distinct(StringComparer.Ordinal).ToArray();
        foreach (var name in shardNames)
        {
            if (!File.Exists(System.IO.Path.Combine(folder, name)))
            {
                string example = index.WeightMap.First(kv => kv.Value == name).Key;
                throw new SafetensorsFormatException(Kind.MissingShard, indexPath, example,
                    $"weight_map puts the tensor in '{name}', which does not exist in '{folder}'");
            }
        }
        var shards = new List<SafetensorsFile>();
        try
        {
            foreach (var name in shardNames)
                shards.Add(SafetensorsFile.Open(System.IO.Path.Combine(folder, name)));
            var checkpoint = new SafetensorsCheckpoint(indexPath, index.TotalSize, [.. shards]);
            checkpoint.CheckAgainst(indexPath, folder, index);
            return checkpoint;
        }
        catch
        {
            foreach (var s in shards)
                s.Dispose();
            throw;
        }
    }

    private void CheckAgainst(string indexPath, string folder, ShardIndex index)
    {
        foreach (var (tensor, shardName) in index.WeightMap)
        {
            if (!_byName.TryGetValue(tensor, out var where))
                throw new SafetensorsFormatException(Kind.ShardMismatch, indexPath, tensor, $"weight_map puts the tensor in '{shardName}', which does not hold it");
            if (where.File.Path != System.IO.Path.Combine(folder, shardName))
                throw new SafetensorsFormatException(Kind.ShardMismatch, indexPath, tensor, $"weight_map puts the tensor in '{shardName}' but it is in '{where.File.Path}'");
        }
        foreach (var t in Tensors)
            if (!index.WeightMap.ContainsKey(t.Name))
                throw new SafetensorsFormatException(Kind.ShardMismatch, indexPath, t.Name, $"the tensor is stored in '{_byName[t.Name].File.Path}' but weight_map does not list it");
    }

    /// <summary>The index file, or null for a single-file checkpoint.</summary>
    public string? IndexPath { get; }

    /// <summary>The index's <c>metadata.total_size</c>, if present (tools disagree on its meaning, so it is not validated).</summary>
    public long? IndexTotalSize { get; }

    /// <summary>The shard files, in the order the index first names them.</summary>
    public IReadOnlyList<SafetensorsFile> Shards => _shards;

    /// <summary>Every tensor: shard by shard, in file order within each.</summary>
    public IReadOnlyList<SafetensorsTensorInfo> Tensors { get; }

    /// <summary>Sum of all tensors' element counts.</summary>
    public long TotalElementCount => Tensors.Sum(t => t.ElementCount);

    /// <summary>Sum of all tensors' data bytes (what HF writes as <c>total_size</c>).</summary>
    public long TotalByteLength => Tensors.Sum(t => t.ByteLength);

    /// <summary>Whether some shard holds a tensor named <paramref name="name"/>.</summary>
    public bool Contains(string name) => _byName.ContainsKey(name);

    /// <summary>Looks a tensor up by name; false when absent.</summary>
    public bool TryGetTensor(string name, out SafetensorsTensorInfo tensor)
    {
        bool found = _byName.TryGetValue(name, out var where);
        tensor = where.Info;
        return found;
    }

    /// <summary>Looks a tensor up by name.</summary>
    /// <exception cref="SafetensorsFormatException">No shard holds it.</exception>
    public SafetensorsTensorInfo GetTensor(string name) => FileOf(name).GetTensor(name);

    /// <summary>The shard that holds the tensor, for raw access (spans, windows, direct reads).</summary>
    /// <exception cref="SafetensorsFormatException">No shard holds it.</exception>
    public SafetensorsFile FileOf(string name) =>
        _byName.TryGetValue(name, out var where) ? where.File
            : throw new SafetensorsFormatException(Kind.TensorNotFound, IndexPath ?? _shards[0].Path, name, $"no such tensor among the checkpoint's {Tensors.Count}");

    /// <summary>A copy of the tensor's bytes.</summary>
    public byte[] ReadBytes(string name) => FileOf(name).ReadBytes(name);

    /// <summary>Copies the tensor's bytes into <paramref name="destination"/> (exactly its byte length).</summary>
    public void CopyTo(string name, Span<byte> destination) => FileOf(name).CopyTo(name, destination);

    /// <summary>The tensor widened to float32 (see <see cref="SafetensorsFile.ReadFloat32(string)"/>).</summary>
    public float[] ReadFloat32(string name) => FileOf(name).ReadFloat32(name);

    /// <summary>Closes every shard.</summary>
    public void Dispose()
    {
        foreach (var s in _shards)
            s.Dispose();
    }
}
