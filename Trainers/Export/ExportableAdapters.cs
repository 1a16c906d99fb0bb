using QuantPeft.Formats.Peft;
using K = QuantPeft.Formats.Peft.PeftErrorKind;
using QuantPeft.Trainers.Adapters.Methods;

namespace QuantPeft.Trainers.Export;

/// <summary>
/// Opens an adapter folder for export by its <c>peft_type</c>: <c>LORA</c> (LoRA, DoRA, and the rank-2r LoRA that PiSSA and
/// LQ-LoRA runs write), <c>VERA</c> (PEFT's VeRA with the shared projections saved) and <c>OSORA</c> (docs/formats.md).
/// </summary>
internal static class ExportableAdapters
{
    /// <summary>The <c>peft_type</c> values <c>qpeft export</c> reads.</summary>
    public static IReadOnlyList<string> PeftTypes => AdapterRegistry.ExportedPeftTypes;

    /// <exception cref="PeftFormatException">A file is missing or the config is malformed.</exception>
    /// <exception cref="ExportException">Another <c>peft_type</c>, or tensors that do not form the adapter; the message names the file.</exception>
    public static IExportableAdapter Open(string folder)
    {
        string configPath = Path.Combine(folder, PeftAdapter.ConfigFileName);
        if (!File.Exists(configPath))
            throw new PeftFormatException(K.MissingConfig, folder, null, $"no {PeftAdapter.ConfigFileName} in the adapter folder");
        var config = PeftAdapterConfigJson.Read(configPath);
        // The first descriptor of the folder's peft_type that reads it (LoRA's reads every PEFT LoRA folder).
        foreach (var descriptor in AdapterRegistry.All.Where(d => d.PeftType == config.PeftType))
            if (descriptor.OpenExport(folder, config) is { } adapter) return adapter;
        throw new ExportException($"{configPath}: peft_type \"{config.PeftType}\" cannot be exported by qpeft; expected one of {string.Join(", ", PeftTypes.Select(t => $"\"{t}\""))}");
    }
}
