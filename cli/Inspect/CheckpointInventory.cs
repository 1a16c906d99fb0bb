using QuantPeft.Formats.HuggingFace;
using QuantPeft.Formats.Safetensors;

namespace QuantPeft.Cli.Inspect;

/// <summary>
/// What <c>qpeft inspect</c> reports about a checkpoint: its tensors (from headers only), totals by dtype,
/// and the architecture when a <c>config.json</c> sits beside it.
/// </summary>
internal sealed class CheckpointInventory
{
    private CheckpointInventory(string path, IReadOnlyList<string> files, IReadOnlyList<TensorRow> tensors, ModelSpec? spec, string? configPath)
    {
        Path = path;
        Files = files;
        Tensors = tensors;
        Spec = spec;
        ConfigPath = configPath;
        ByDType = tensors.GroupBy(t => t.DType)
            .Select(g => new DTypeTotal(g.Key, g.Count(), g.Sum(t => t.Elements), g.Sum(t => t.Bytes)))
            .OrderByDescending(d => d.Bytes).ToArray();
    }

    public string Path { get; }
    public IReadOnlyList<string> Files { get; }
    public IReadOnlyList<TensorRow> Tensors { get; }
    public IReadOnlyList<DTypeTotal> ByDType { get; }
    public ModelSpec? Spec { get; }
    public string? ConfigPath { get; }
    public long Parameters => Tensors.Sum(t => t.Elements);
    public long Bytes => Tensors.Sum(t => t.Bytes);

    /// <summary>
    /// Reads the headers of a <c>.safetensors</c> file, a shard index, or a model folder; no tensor data is read.
    /// </summary>
    public static CheckpointInventory Load(string path)
    {
        string full = System.IO.Path.GetFullPath(path);
        if (!File.Exists(full) && !Directory.Exists(full))
            throw new FileNotFoundException($"'{path}': no such file or folder", path);
        string folder = Directory.Exists(full) ? full : System.IO.Path.GetDirectoryName(full)!;
        string configPath = System.IO.Path.Combine(folder, ModelConfigReader.FileName);
        bool isConfigOnly = File.Exists(full) && System.IO.Path.GetFileName(full) == ModelConfigReader.FileName;

        ModelSpec? spec = File.Exists(configPath) ? ModelConfigReader.Read(configPath) : null;
        if (isConfigOnly)
            return new CheckpointInventory(full, [], [], spec, configPath);

        using var checkpoint = SafetensorsCheckpoint.Open(full);
        var rows = new List<TensorRow>(checkpoint.Tensors.Count);
        foreach (SafetensorsTensorInfo t in checkpoint.Tensors)
        {
            string file = System.IO.Path.GetFileName(checkpoint.FileOf(t.Name).Path);
            rows.Add(new TensorRow(t.Name, t.DType.HeaderName(), t.Shape, t.ElementCount, t.ByteLength, file));
        }
        string[] files = checkpoint.Shards.Select(s => s.Path).ToArray();
        return new CheckpointInventory(full, files, rows, spec, spec is null ? null : configPath);
    }
}

/// <summary>One tensor of the inventory.</summary>
internal sealed record TensorRow(string Name, string DType, long[] Shape, long Elements, long Bytes, string File);

/// <summary>Totals for one dtype.</summary>
internal sealed record DTypeTotal(string DType, int Tensors, long Elements, long Bytes);
