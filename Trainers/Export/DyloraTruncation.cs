using System.Text.Json;
using System.Text.Json.Nodes;
using QuantPeft.Formats.Peft;
using QuantPeft.Trainers.Recipes;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Export;

/// <summary>
/// A DyLoRA adapter at rank k ≤ r: the PEFT LoRA of rank k and the same α built from the first k rows of every A and
/// the first k columns of every B, which is what the trained adapter computes at rank k (scaling α/k). A DyLoRA run's
/// adapter folder is a PEFT LoRA at rank r plus <see cref="MarkerFileName"/>, which says its ranks are nested.
/// </summary>
public static class DyloraTruncation
{
    /// <summary>The file beside <c>adapter_config.json</c> that marks a DyLoRA adapter: <c>{"r": r, "lora_alpha": α}</c>.</summary>
    public const string MarkerFileName = "dylora_config.json";

    /// <summary>Writes the marker of a rank-<paramref name="rank"/> DyLoRA adapter into <paramref name="folder"/> (created if absent).</summary>
    public static void WriteMarker(string folder, int rank, double alpha)
    {
        Directory.CreateDirectory(folder);
        var json = new JsonObject { ["lora_alpha"] = alpha, ["r"] = rank, ["rank_distribution"] = "uniform", ["update"] = "frozen" };
        string path = Path.Combine(folder, MarkerFileName), temp = path + ".tmp";
        File.WriteAllText(temp, json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        File.Move(temp, path, overwrite: true);
    }

    /// <summary>The largest rank r of the DyLoRA adapter in <paramref name="folder"/>, or null when it is not one.</summary>
    /// <exception cref="ExportException">The marker is there but has no positive integer <c>r</c>.</exception>
    public static int? MarkedRank(string folder)
    {
        string path = Path.Combine(folder, MarkerFileName);
        if (!File.Exists(path)) return null;
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(path));
            if (doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty("r", out var r) && r.TryGetInt32(out int rank) && rank > 0)
                return rank;
        }
        catch (JsonException e)
        {
            throw new ExportException($"{path}: not valid JSON ({e.Message})");
        }
        throw new ExportException($"{path}: \"r\": expected a positive integer");
    }

    /// <summary>
    /// Checks that <paramref name="adapterFolder"/> holds a DyLoRA adapter whose ranks include <paramref name="rank"/>,
    /// before anything is written.
    /// </summary>
    /// <exception cref="ExportException">It is not a DyLoRA adapter, or <paramref name="rank"/> is outside [1, r].</exception>
    public static void Check(string adapterFolder, int rank)
    {
        int r = MarkedRank(adapterFolder)
            ?? throw new ExportException($"--rank: {adapterFolder} is not a DyLoRA adapter (no {MarkerFileName}); only a DyLoRA adapter can be truncated");
        if (rank < 1 || rank > r)
            throw new ExportException($"--rank: {rank} is outside [1, {r}], the ranks of the DyLoRA adapter in {adapterFolder}");
    }

    /// <summary>Writes the adapter of <paramref name="adapterFolder"/> truncated to <paramref name="rank"/> into <paramref name="output"/> (a PEFT LoRA folder with its marker).</summary>
    /// <exception cref="ExportException">See <see cref="Check"/>; or a module's rank is not the adapter's r.</exception>
    public static void Write(string adapterFolder, int rank, string output)
    {
        Check(adapterFolder, rank);
        int r = MarkedRank(adapterFolder)!.Value;
        using var adapter = PeftAdapter.Load(adapterFolder);
        if (adapter.Modules.FirstOrDefault(m => m.Rank != r) is { } odd)
            throw new ExportException($"{Path.Combine(adapterFolder, PeftAdapter.ConfigFileName)}: '{odd.ModulePath}' has rank {odd.Rank}, the DyLoRA adapter's r is {r}");
        using var source = new SafetensorsModelSource(Path.Combine(adapterFolder, PeftAdapter.WeightsFileName));
        using var scope = NewDisposeScope();
        var entries = new List<QuantPeft.Formats.Safetensors.SafetensorsTensorEntry>();
        foreach (var m in adapter.Modules)
        {
            var a = source.Get(LoraTensorNames.LoraA(m.ModulePath)).narrow(0, 0, rank).contiguous();
            var b = source.Get(LoraTensorNames.LoraB(m.ModulePath)).narrow(1, 0, rank).contiguous();
            entries.Add(SafetensorsModelSource.Entry(LoraTensorNames.LoraA(m.ModulePath), a));
            entries.Add(SafetensorsModelSource.Entry(LoraTensorNames.LoraB(m.ModulePath), b));
        }
        WriteMarker(output, rank, adapter.Config.LoraAlpha);
        PeftAdapter.Save(output, adapter.Config with { R = rank }, entries);
    }
}

/// <summary>A DyLoRA adapter truncated into a temporary folder for one export, deleted on dispose.</summary>
public sealed class TruncatedDylora : IDisposable
{
    private TruncatedDylora(string folder) => Folder = folder;

    /// <summary>The truncated PEFT LoRA folder.</summary>
    public string Folder { get; }

    /// <summary>Truncates <paramref name="adapterFolder"/> to <paramref name="rank"/> into a new temporary folder.</summary>
    /// <exception cref="ExportException">See <see cref="DyloraTruncation.Check"/>.</exception>
    public static TruncatedDylora Create(string adapterFolder, int rank)
    {
        DyloraTruncation.Check(adapterFolder, rank);
        var truncated = new TruncatedDylora(Path.Combine(Path.GetTempPath(), $"qpeft-dylora-r{rank}-{Guid.NewGuid():N}"));
        try
        {
            DyloraTruncation.Write(adapterFolder, rank, truncated.Folder);
            return truncated;
        }
        catch
        {
            truncated.Dispose();
            throw;
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (Directory.Exists(Folder)) Directory.Delete(Folder, recursive: true);
    }
}
