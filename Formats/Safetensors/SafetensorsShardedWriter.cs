using System.Text.Json;

namespace QuantPeft.Formats.Safetensors;

/// <summary>The files a sharded write produced.</summary>
/// <param name="IndexPath">The <c>model.safetensors.index.json</c>, or null when everything fit in one file.</param>
/// <param name="ShardPaths">The shard files, in order.</param>
/// <param name="TotalSize">Sum of all tensors' data bytes (the index's <c>total_size</c>).</param>
public sealed record SafetensorsShardedWriteResult(string? IndexPath, IReadOnlyList<string> ShardPaths, long TotalSize);

/// <summary>
/// Writes a checkpoint split into shards of at most a given size, named and indexed as Hugging Face
/// does (<c>model-00001-of-00003.safetensors</c> + <c>model.safetensors.index.json</c>). All or nothing:
/// every shard and the index are written to temporary files first and moved into place only when all
/// succeeded, the index last, so a reader that finds the index finds every shard it names.
/// </summary>
public static class SafetensorsShardedWriter
{
    /// <summary>
    /// Splits <paramref name="entries"/>, in the given order, into shards: a tensor starts a new shard
    /// when it would push the current one past <paramref name="maxShardBytes"/> (a tensor larger than the
    /// limit gets a shard of its own), as <c>huggingface_hub</c>'s splitter does. When one shard holds
    /// everything it is written as <c>{baseName}.safetensors</c> with no index, as <c>save_pretrained</c> does.
    /// </summary>
    /// <param name="folder">Target folder (created if missing).</param>
    /// <param name="entries">Tensors and their data sources.</param>
    /// <param name="maxShardBytes">Largest amount of tensor data per shard.</param>
    /// <param name="metadata">Each shard's <c>__metadata__</c> (HF writes <c>{"format": "pt"}</c>).</param>
    /// <param name="baseName">File name stem: <c>model</c> gives <c>model-00001-of-00002.safetensors</c> and <c>model.safetensors.index.json</c>.</param>
    public static SafetensorsShardedWriteResult Write(string folder, IEnumerable<SafetensorsTensorEntry> entries, long maxShardBytes,
        IReadOnlyDictionary<string, string>? metadata = null, string baseName = "model")
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        ArgumentNullException.ThrowIfNull(entries);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxShardBytes);
        var list = entries.ToList();
        var duplicate = list.GroupBy(e => e.Layout.Name, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null)
            throw new ArgumentException($"tensor '{duplicate.Key}' is declared twice", nameof(entries));
        var groups = Split(list, maxShardBytes);
        Directory.CreateDirectory(folder);
        long totalSize = groups.Sum(g => g.Sum(e => e.Layout.ByteLength));
        var names = groups.Count == 1
            ? [$"{baseName}.safetensors"]
            : Enumerable.Range(1, groups.Count).Select(i => $"{baseName}-{i:D5}-of-{groups.Count:D5}.safetensors").ToList();

        var writers = new List<SafetensorsWriter>();
        var moved = new List<string>();
        string? indexTemp = null;
        try
        {
            for (int s = 0; s < groups.Count; s++)
            {
                var writer = SafetensorsWriter.CreateFrom(Path.Combine(folder, names[s]), groups[s], out var sources, metadata);
                writers.Add(writer);
                writer.WriteAll(sources);
                writer.Complete();
            }
            string? indexPath = null;
            if (groups.Count > 1)
            {
                indexPath = Path.Combine(folder, $"{baseName}.safetensors.index.json");
                indexTemp = Path.Combine(folder, $".{baseName}.safetensors.index.json.{Guid.NewGuid():N}{SafetensorsWriter.TempSuffix}");
                WriteIndex(indexTemp, groups, names, totalSize);
            }
            foreach (var w in writers)
            {
                File.Move(w.TempPath, w.Path, overwrite: true);
                moved.Add(w.Path);
            }
            if (indexPath is not null)
                File.Move(indexTemp!, indexPath, overwrite: true);
            return new SafetensorsShardedWriteResult(indexPath, writers.Select(w => w.Path).ToList(), totalSize);
        }
        catch
        {
            foreach (var path in moved)
                File.Delete(path);
            if (indexTemp is not null)
                File.Delete(indexTemp);
            throw;
        }
        finally
        {
            foreach (var w in writers)
                w.Dispose();
        }
    }

    private static List<List<SafetensorsTensorEntry>> Split(List<SafetensorsTensorEntry> entries, long maxShardBytes)
    {
        var groups = new List<List<SafetensorsTensorEntry>> { new() };
        long current = 0;
        foreach (var e in entries)
        {
            long bytes = e.Layout.ByteLength;
            if (groups[^1].Count > 0 && current + bytes > maxShardBytes)
            {
                groups.Add([]);
                current = 0;
            }
            groups[^1].Add(e);
            current += bytes;
        }
        return groups;
    }

    // Same shape as transformers' index: indent 2, keys sorted, trailing newline.
    private static void WriteIndex(string path, List<List<SafetensorsTensorEntry>> groups, List<string> names, long totalSize)
    {
        var map = new SortedDictionary<string, string>(StringComparer.Ordinal);
        for (int s = 0; s < groups.Count; s++)
            foreach (var e in groups[s])
                map[e.Layout.Name] = names[s];
        using (var stream = new FileStream(path, FileMode.CreateNew, FileAccess.Write))
        {
            using (var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
            {
                json.WriteStartObject();
                json.WriteStartObject("metadata");
                json.WriteNumber("total_size", totalSize);
                json.WriteEndObject();
                json.WriteStartObject("weight_map");
                foreach (var (tensor, shard) in map)
                    json.WriteString(tensor, shard);
                json.WriteEndObject();
                json.WriteEndObject();
            }
            stream.WriteByte((byte)'\n');
            stream.Flush(flushToDisk: true);
        }
    }
}
