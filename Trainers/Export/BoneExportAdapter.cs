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
internal sealed class BoneExportAdapter : PeftFolderExportAdapter
{
    private const string Local = "bone_block";

    private BoneExportAdapter(string folder, PeftAdapterConfig config, AdapterTensorFile file, SortedDictionary<string, Dictionary<string, long[]>> modules)
        : base(folder, config, file, modules)
    {
    }

    public override string Method => "Bone";

    /// <summary>Reads and checks the tensors of the Bone folder whose config is <paramref name="config"/>.</summary>
    /// <exception cref="ExportException">The Bat variant (<c>init_weights: "bat"</c>), or tensors that are not [r, out_features] blocks.</exception>
    public static BoneExportAdapter Open(string folder, PeftAdapterConfig config)
    {
        string configPath = Path.Combine(folder, PeftAdapter.ConfigFileName);
        // "bat" multiplies W's blocks by the trained ones (a different update); false only changes the initialisation.
        if (config.AdditionalKeys.TryGetValue("init_weights", out var init) && init.ValueKind == JsonValueKind.String)
            throw new ExportException($"{configPath}: init_weights {init.GetRawText()} (the Bat variant) is not merged by qpeft; expected true, the Bone variant qpeft writes");
        return OpenChecked(folder, file =>
        {
            var modules = file.Modules([Local], [], "Bone");
            foreach (var (module, p) in modules)
                if (p[Local] is not [var r, _] || r != config.R)
                    throw new ExportException($"{file.Path}: '{AdapterTensorFile.Key(module, Local)}' has shape {AdapterTensorFile.Text(p[Local])}, expected [r = {config.R} ({configPath}), out_features]");
            return new BoneExportAdapter(folder, config, file, modules);
        });
    }

    public override void CheckFits(ModelSpec spec, string modelConfigPath)
    {
        ExportChecks.Config(Config, ConfigPath, spec);
        var shapes = ExportChecks.Shapes(spec);
        foreach (var (module, parts) in Modules)
        {
            var shape = ExportChecks.ProjectionShape(shapes, module, TensorFile.Path, spec, modelConfigPath);
            if (parts[Local][1] != shape[0])
                throw new ExportException($"{TensorFile.Path}: '{AdapterTensorFile.Key(module, Local)}' has {parts[Local][1]} columns, the model's weight has {shape[0]} output rows ({modelConfigPath}); the adapter was trained on another model");
        }
    }

    public override int MergeInto(CausalLm model)
    {
        foreach (var module in Modules.Keys)
        {
            using var scope = NewDisposeScope();
            var linear = ExportChecks.DenseBase(model, module);
            var block = TensorFile.Read(AdapterTensorFile.Key(module, Local), linear.Device);
            linear.AddToWeight(BoneLinear.Delta(block, linear.InFeatures));
        }
        return Modules.Count;
    }

}
