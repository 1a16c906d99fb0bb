using QuantPeft.Formats.Peft;

namespace QuantPeft.Trainers.Export;

/// <summary>
/// <c>qpeft export</c> without <c>--merge</c>: the adapter (LoRA, DoRA, VeRA or OSoRA) validated (its config and tensors, and that it fits
/// the base model's architecture) and copied to a new folder atomically.
/// </summary>
public static class PeftAdapterCopy
{
    /// <summary>Validates the adapter in <paramref name="adapterFolder"/> against <paramref name="modelFolder"/> and copies it to <paramref name="output"/>.</summary>
    /// <exception cref="ExportException">The adapter does not fit the model, or the output folder is not empty.</exception>
    public static ExportResult Copy(string adapterFolder, string modelFolder, string output)
    {
        var (spec, configPath) = MergedModelExport.ReadSpec(modelFolder);
        using (var adapter = ExportableAdapters.Open(adapterFolder))
            adapter.CheckFits(spec, configPath);
        string written = ExportFolder.Build(output, temp =>
        {
            foreach (var file in Directory.EnumerateFiles(adapterFolder))
                if (!Path.GetFileName(file).StartsWith('.'))
                    File.Copy(file, Path.Combine(temp, Path.GetFileName(file)));
        });
        return new ExportResult(written, [Path.Combine(written, PeftAdapter.WeightsFileName)], null, 0);
    }

    /// <summary>
    /// The adapter folder that <c>ADAPTER_OR_RUN</c> means: the folder itself when it holds <c>adapter_config.json</c>,
    /// else its <c>adapter/</c> subfolder (a run folder).
    /// </summary>
    /// <exception cref="ExportException">Neither holds an adapter config; the message names the file looked for.</exception>
    public static string ResolveAdapter(string path)
    {
        if (!Directory.Exists(path)) throw new ExportException($"ADAPTER_OR_RUN: '{path}' does not exist");
        if (File.Exists(Path.Combine(path, PeftAdapter.ConfigFileName))) return path;
        string inRun = Path.Combine(path, "adapter");
        if (File.Exists(Path.Combine(inRun, PeftAdapter.ConfigFileName))) return inRun;
        throw new ExportException($"ADAPTER_OR_RUN: missing {Path.Combine(path, PeftAdapter.ConfigFileName)} (expected a PEFT adapter folder, or a run folder with adapter/)");
    }
}
