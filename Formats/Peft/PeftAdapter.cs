using QuantPeft.Formats.Safetensors;
using K = QuantPeft.Formats.Peft.PeftErrorKind;

namespace QuantPeft.Formats.Peft;

/// <summary>
/// A PEFT LoRA adapter folder: <c>adapter_config.json</c> plus <c>adapter_model.safetensors</c>.
/// Loading validates the config and that the tensors form LoRA pairs matching it; the weights stay
/// memory-mapped in <see cref="Weights"/>. Saving writes both files into a temporary sibling folder
/// and renames it into place, so no reader ever sees half an adapter.
/// </summary>
public sealed class PeftAdapter : IDisposable
{
    /// <summary>PEFT's config file name.</summary>
    public const string ConfigFileName = "adapter_config.json";

    /// <summary>PEFT's weights file name.</summary>
    public const string WeightsFileName = "adapter_model.safetensors";

    private PeftAdapter(string folder, PeftAdapterConfig config, SafetensorsFile weights, IReadOnlyList<LoraModule> modules, IReadOnlyList<string> warnings)
    {
        Folder = folder;
        Config = config;
        Weights = weights;
        Modules = modules;
        Warnings = warnings;
    }

    /// <summary>The adapter folder.</summary>
    public string Folder { get; }

    /// <summary>The parsed config.</summary>
    public PeftAdapterConfig Config { get; }

    /// <summary>The adapter tensors (memory-mapped; read them by name).</summary>
    public SafetensorsFile Weights { get; }

    /// <summary>The adapted modules, by module path.</summary>
    public IReadOnlyList<LoraModule> Modules { get; }

    /// <summary>Everything worth telling the user that is not an error: unknown config keys, ignored tensors.</summary>
    public IReadOnlyList<string> Warnings { get; }

    /// <summary>Loads and validates the adapter in <paramref name="folder"/>.</summary>
    /// <exception cref="PeftFormatException">A file is missing, or the config or tensors are invalid.</exception>
    /// <exception cref="SafetensorsFormatException">The weights file is malformed.</exception>
    public static PeftAdapter Load(string folder)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        string configPath = Path.Combine(folder, ConfigFileName);
        if (!File.Exists(configPath))
            throw new PeftFormatException(K.MissingConfig, folder, null, $"no {ConfigFileName} in the adapter folder");
        var config = PeftAdapterConfigJson.Read(configPath);
        if (config.PeftType != "LORA")
            throw new PeftFormatException(K.UnsupportedPeftType, configPath, "peft_type", $"only \"LORA\" adapters are supported, found \"{config.PeftType}\"");
        string weightsPath = Path.Combine(folder, WeightsFileName);
        if (!File.Exists(weightsPath))
            throw new PeftFormatException(K.MissingWeights, folder, null,
                File.Exists(Path.Combine(folder, "adapter_model.bin"))
                    ? $"only a legacy adapter_model.bin is present; convert it to {WeightsFileName}"
                    : $"no {WeightsFileName} in the adapter folder");
        var weights = SafetensorsFile.Open(weightsPath);
        try
        {
            var warnings = new List<string>(config.Warnings);
            var modules = LoraAdapterValidator.Validate(weightsPath, config, weights.Tensors.Select(t => (t.Name, t.Shape)), warnings);
            if (modules.Count == 0)
                warnings.Add($"'{weightsPath}': no LoRA tensors (nothing named {LoraTensorNames.Prefix}<module>.lora_A.weight)");
            return new PeftAdapter(folder, config, weights, modules, warnings);
        }
        catch
        {
            weights.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Writes an adapter folder atomically. The tensors are validated against the config first (pairs,
    /// shapes, ranks), then both files are written to a temporary sibling folder that replaces
    /// <paramref name="folder"/>. Files already in <paramref name="folder"/> other than the adapter's own
    /// (a README, tokenizer files) are carried over.
    /// </summary>
    /// <param name="folder">The adapter folder to produce.</param>
    /// <param name="config">The config to write (PEFT saves with <c>inference_mode: true</c>).</param>
    /// <param name="tensors">The adapter tensors, named per <see cref="LoraTensorNames"/>.</param>
    public static void Save(string folder, PeftAdapterConfig config, IEnumerable<SafetensorsTensorEntry> tensors)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(tensors);
        var list = tensors.ToList();
        LoraAdapterValidator.Validate(folder, config, list.Select(e => (e.Layout.Name, e.Layout.Shape)), []);

        AdapterFolderWriter.Write(folder, PeftAdapterConfigJson.Serialize(config), list);
    }

    /// <summary>Closes the weights file.</summary>
    public void Dispose() => Weights.Dispose();
}
