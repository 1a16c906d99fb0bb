using System.Runtime.InteropServices;
using QuantPeft.Formats.Gguf;
using QuantPeft.Formats.HuggingFace;
using QuantPeft.Formats.Peft;
using QuantPeft.Trainers.Model;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Export.Gguf;

/// <summary>
/// <c>qpeft export --format gguf-lora</c>: a PEFT LoRA adapter as a llama.cpp LoRA file (<c>llama-cli --lora</c>, LLamaSharp's
/// <c>LoadLoraFromFile</c>), for users who keep the base GGUF. Each adapted projection gives <c>blk.N.&lt;name&gt;.weight.lora_a</c>
/// (A, ne = [in, r]) and <c>.lora_b</c> (B, ne = [r, out]), float32.
/// </summary>
/// <remarks>
/// PEFT scales B·A by α/r (α/√r with rsLoRA, per-module α and r with <c>alpha_pattern</c>/<c>rank_pattern</c>); llama.cpp
/// scales by <c>adapter.lora.alpha</c>/r, or by 1 when that key is 0. The file folds each module's PEFT scale into its B and
/// writes α = 0, so every variant loads with exactly PEFT's update. For the llama architecture the rows of B of q and k are
/// reordered as the base's q/k rows are (<see cref="GgufModelLayout"/>). DoRA has no llama.cpp form and is refused.
/// </remarks>
public static class GgufLoraExport
{
    /// <summary>Writes the adapter in <paramref name="adapterFolder"/>, checked against <paramref name="model"/>, to <paramref name="output"/>.</summary>
    /// <exception cref="ExportException">Not a LoRA adapter, a DoRA adapter, an adapter for another model, or the output exists.</exception>
    public static GgufExportResult Write(string adapterFolder, string model, string output)
    {
        if (File.Exists(output) || Directory.Exists(output)) throw new ExportException($"-o: '{output}' already exists; give a new file name");
        var (spec, configPath) = MergedModelExport.ReadSpec(model);
        string arch = GgufModelLayout.Architecture(spec);
        using var adapter = ExportableAdapters.Open(adapterFolder);
        if (adapter is not LoraExportAdapter lora || lora.Method != "LoRA")
            throw new ExportException($"{Path.Combine(adapterFolder, PeftAdapter.ConfigFileName)}: a {adapter.Method} adapter has no llama.cpp LoRA form; merge it instead (--format gguf)");
        adapter.CheckFits(spec, configPath);
        var peft = lora.Adapter;

        var meta = new GgufMetadata();
        meta.Set("general.architecture", arch);
        meta.Set("general.type", "adapter");
        meta.Set("general.name", Path.GetFileName(Path.GetFullPath(adapterFolder).TrimEnd(Path.DirectorySeparatorChar)));
        meta.Set("adapter.type", "lora");
        meta.SetFloat32("adapter.lora.alpha", 0f);   // llama.cpp then applies B·A as stored: the PEFT scale is in B
        var tensors = new List<GgufTensor>();
        foreach (var m in peft.Modules)
        {
            string name = GgufModelLayout.TensorName(m.ModulePath + ".weight")
                ?? throw new ExportException($"{adapterFolder}: module '{m.ModulePath}' has no llama.cpp tensor");
            int heads = GgufModelLayout.PermutedHeads(spec, m.ModulePath + ".weight");
            double scale = peft.Config.ScalingFor(m.ModulePath);
            tensors.Add(new GgufTensor(name + ".lora_a", [m.InFeatures, m.Rank], GgmlType.F32,
                s => WriteFloats(s, peft.Weights, LoraTensorNames.LoraA(m.ModulePath), 1.0, 0)));
            tensors.Add(new GgufTensor(name + ".lora_b", [m.Rank, m.OutFeatures], GgmlType.F32,
                s => WriteFloats(s, peft.Weights, LoraTensorNames.LoraB(m.ModulePath), scale, heads)));
        }
        string full = Path.GetFullPath(output);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        string temp = Path.Combine(Path.GetDirectoryName(full)!, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
        try
        {
            GgufWriter.Write(temp, meta, tensors);
            File.Move(temp, full);
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
        return new GgufExportResult(full, new FileInfo(full).Length, tensors.Count, 0);
    }

    private static void WriteFloats(Stream stream, Formats.Safetensors.SafetensorsFile file, string key, double scale, int permutedHeads)
    {
        using var scope = NewDisposeScope();
        var info = file.GetTensor(key);
        var t = tensor(file.ReadFloat32(key), info.Shape.ToArray()).to(ScalarType.Float64).mul(ScalarOpsScale(scale)).to(ScalarType.Float32);
        if (permutedHeads > 0)
            t = t.index_select(0, tensor(GgufModelLayout.PermutedRowOrder(t.shape[0], permutedHeads)));
        using var contiguous = t.contiguous();
        stream.Write(contiguous.bytes);
    }

    private static Tensor ScalarOpsScale(double scale) => tensor(scale, ScalarType.Float64);
}
