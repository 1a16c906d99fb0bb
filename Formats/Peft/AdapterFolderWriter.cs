using QuantPeft.Formats.Safetensors;

namespace QuantPeft.Formats.Peft;

/// <summary>
/// Writes an adapter folder (<c>adapter_config.json</c> + <c>adapter_model.safetensors</c>) atomically for any
/// <c>peft_type</c>: both files go to a temporary sibling folder that then replaces the target, so a reader never
/// sees half an adapter. LoRA adapters go through <see cref="PeftAdapter.Save"/>, which validates them first.
/// </summary>
public static class AdapterFolderWriter
{
    private static readonly IReadOnlyDictionary<string, string> PtMetadata = new Dictionary<string, string> { ["format"] = "pt" };

    /// <summary>Writes <paramref name="configJson"/> and <paramref name="tensors"/> into <paramref name="folder"/>.</summary>
    /// <param name="folder">The adapter folder to produce; files in an existing folder other than the adapter's own are carried over.</param>
    /// <param name="configJson">The full text of <c>adapter_config.json</c>.</param>
    /// <param name="tensors">The adapter tensors, already named as the format wants them.</param>
    public static void Write(string folder, string configJson, IReadOnlyList<SafetensorsTensorEntry> tensors)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        ArgumentNullException.ThrowIfNull(configJson);
        ArgumentNullException.ThrowIfNull(tensors);
        string full = Path.GetFullPath(folder).TrimEnd(Path.DirectorySeparatorChar);
        string parent = Path.GetDirectoryName(full)!;
        string name = Path.GetFileName(full);
        Directory.CreateDirectory(parent);
        string temp = Path.Combine(parent, $".{name}.{Guid.NewGuid():N}{SafetensorsWriter.TempSuffix}");
        try
        {
            Directory.CreateDirectory(temp);
            SafetensorsWriter.WriteFile(Path.Combine(temp, PeftAdapter.WeightsFileName), tensors, PtMetadata);
            File.WriteAllText(Path.Combine(temp, PeftAdapter.ConfigFileName), configJson);
            Swap(full, temp);
        }
        catch
        {
            if (Directory.Exists(temp))
                Directory.Delete(temp, recursive: true);
            throw;
        }
    }

    // Directory renames are atomic; a folder cannot be renamed over a non-empty one, so an existing
    // adapter is moved aside first and its unrelated files are moved into the new folder afterwards.
    private static void Swap(string target, string temp)
    {
        if (!Directory.Exists(target))
        {
            Directory.Move(temp, target);
            return;
        }
        string old = temp + ".old";
        Directory.Move(target, old);
        try
        {
            Directory.Move(temp, target);
        }
        catch
        {
            Directory.Move(old, target);
            throw;
        }
        foreach (var entry in Directory.EnumerateFileSystemEntries(old))
        {
            string entryName = Path.GetFileName(entry);
            if (entryName is PeftAdapter.ConfigFileName or PeftAdapter.WeightsFileName or "adapter_model.bin")
                continue;
            string destination = Path.Combine(target, entryName);
            if (Directory.Exists(entry))
                Directory.Move(entry, destination);
            else
                File.Move(entry, destination);
        }
        Directory.Delete(old, recursive: true);
    }
}
