using QuantPeft.Formats.HuggingFace;
using QuantPeft.Formats.Safetensors;

namespace QuantPeft.Trainers.Export;

/// <summary>
/// The output folder of an export: refused when it already holds files, built under a hidden temporary sibling
/// (<c>.&lt;name&gt;.&lt;guid&gt;.tmp</c>) and renamed into place only when everything was written.
/// </summary>
internal static class ExportFolder
{
    // Weights in any format and the config are written by the export itself; everything else in a model folder
    // (tokenizer.json, tokenizer.model, tokenizer_config.json, special_tokens_map.json, generation_config.json,
    // qpeft-tokenizer.json, a chat template, a README) is carried over as it is.
    private static readonly string[] WeightSuffixes = [".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".h5", ".msgpack", ".gguf"];

    /// <exception cref="ExportException">The output is a file or a non-empty folder.</exception>
    public static void CheckTarget(string output)
    {
        if (File.Exists(output)) throw new ExportException($"-o: '{output}' is a file; give a folder that does not exist yet");
        if (Directory.Exists(output) && Directory.EnumerateFileSystemEntries(output).Any())
            throw new ExportException($"-o: '{output}' already exists and is not empty; give a new folder");
    }

    /// <summary>Runs <paramref name="write"/> on a temporary folder, then moves it to <paramref name="output"/>.</summary>
    public static string Build(string output, Action<string> write)
    {
        CheckTarget(output);
        string full = Path.GetFullPath(output).TrimEnd(Path.DirectorySeparatorChar);
        string parent = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(parent);
        string temp = Path.Combine(parent, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
        try
        {
            Directory.CreateDirectory(temp);
            write(temp);
            if (Directory.Exists(full)) Directory.Delete(full);   // empty, checked above
            Directory.Move(temp, full);
            return full;
        }
        catch
        {
            if (Directory.Exists(temp)) Directory.Delete(temp, recursive: true);
            throw;
        }
    }

    /// <summary>Copies the model folder's files that are neither weights nor the config (tokenizer files and the like).</summary>
    public static void CopySideFiles(string modelFolder, string destination)
    {
        foreach (var file in Directory.EnumerateFiles(modelFolder))
        {
            string name = Path.GetFileName(file);
            if (name == ModelConfigReader.FileName || name == SafetensorsCheckpoint.IndexFileName || name.StartsWith('.')
                || name.EndsWith(".index.json", StringComparison.Ordinal)
                || WeightSuffixes.Any(s => name.EndsWith(s, StringComparison.OrdinalIgnoreCase)))
                continue;
            File.Copy(file, Path.Combine(destination, name));
        }
    }

    public static ExportResult Describe(string folder, int merged)
    {
        string index = Path.Combine(folder, SafetensorsCheckpoint.IndexFileName);
        return new ExportResult(folder, [.. Directory.GetFiles(folder, "*.safetensors").Order(StringComparer.Ordinal)],
            File.Exists(index) ? index : null, merged);
    }
}
