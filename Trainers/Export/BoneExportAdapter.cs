using System.Text.Json;
using QuantPeft.Formats.HuggingFace;
using QuantPeft.Formats.Peft;
using QuantPeft.Trainers.Adapters;
using QuantPeft.Trainers.Model;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Export;

/// <summary>
/// A PEFT Bone folder (<c>peft_type: "BONE"</c>) merged from its file: per module ΔW[o, c] = bone_block[c mod r, o]
/// (<see cref="BoneLinear.Delta"/>), the block added to every r-column block of W as PEFT's Bone merge does.
/// </summary>
internal sealed class BoneExportAdapter : IExportableAdapter
{
    private const string Local = "bone_block";
    private readonly AdapterTensorFile _file;
    private readonly SortedDictionary<string, Dictionary<string, long[]>> _modules;
    private readonly string _configPath;
    private readonly PeftAdapterConfig _config;

    private BoneExportAdapter(string folder, string configPath, PeftAdapterConfig config, AdapterTensorFile file, SortedDictionary<string, Dictionary<string, long[]>> modules)
    {
        Folder = folder;
        _configPath = configPath;
        _config = config;
        _file = file;
        _modules = modules;
    }

    public string Folder { get; }

    public string Method => "Bone";

    /// <summary>Reads and checks the tensors of the Bone folder whose config is <paramref name="config"/>.</summary>
    /// <exception cref="ExportException">The Bat variant (<c>init_weights: "bat"</c>), or tensors that are not [r, out_features] blocks.</exception>
    public static BoneExportAdapter Open(string folder, PeftAdapterConfig config)
    {
        string configPath = Path.Combine(folder, PeftAdapter.ConfigFileName);
        // "bat" multiplies W's blocks by the trained ones (a different update); false only changes the initialisation.
        if (config.AdditionalKeys.TryGetValue("init_weights", out var init) && init.ValueKind == JsonValueKind.String)
            throw new ExportException($"{configPath}: init_weights {init.GetRawText()} (the Bat variant) is not merged by qpeft; expected true, the Bone variant qpeft writes");
        var file = AdapterTensorFile.Open(folder);
        try
        {
            var modules = file.Modules([Local], [], "Bone");
            foreach (var (module, p) in modules)
                if (p[Local] is not [var r, _] || r != config.R)
                    throw new ExportException($"{file.Path}: '{AdapterTensorFile.Key(module, Local)}' has shape {AdapterTensorFile.Text(p[Local])}, expected [r = {config.R} ({configPath}), out_features]");
            return new BoneExportAdapter(folder, configPath, config, file, modules);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    public void CheckFits(ModelSpec spec, string modelConfigPath)
    {
        ExportChecks.Config(_config, _configPath, spec);
        var shapes = ExportChecks.Shapes(spec);
        foreach (var (module, parts) in _modules)
        {
            var shape = ExportChecks.ProjectionShape(shapes, module, _file.Path, spec, modelConfigPath);
            if (parts[Local][1] != shape[0])
                throw new ExportException($"{_file.Path}: '{AdapterTensorFile.Key(module, Local)}' has {parts[Local][1]} columns, the model's weight has {shape[0]} output rows ({modelConfigPath}); the adapter was trained on another model");
        }
    }

    public int MergeInto(CausalLm model)
    {
        foreach (var module in _modules.Keys)
        {
            using var scope = NewDisposeScope();
            var linear = ExportChecks.DenseBase(model, module);
            var block = _file.Read(AdapterTensorFile.Key(module, Local), linear.Device);
            linear.AddToWeight(BoneLinear.Delta(block, linear.InFeatures));
        }
        return _modules.Count;
    }

    public void Dispose() => _file.Dispose();
}
