using System.Text.Json.Nodes;
using QuantPeft.Formats.Peft;
using QuantPeft.Formats.Safetensors;
using QuantPeft.Memory.Planning;
using QuantPeft.Trainers.Export;
using QuantPeft.Trainers.Recipes;

namespace QuantPeft.Trainers.Adapters.Methods;

/// <summary>
/// Bone: <see cref="BoneLinear"/>, one trained block per target added to every column block of W. Saved as PEFT's BONE
/// (<c>init_weights: true</c>, the Bone variant rather than Bat) with each layer's <c>bone_block</c>; merged from that file.
/// </summary>
internal sealed class BoneDescriptor : AdapterDescriptor
{
    public override TrainingMethod Method => TrainingMethod.Bone;
    public override string DisplayName => "Bone";
    public override string PeftType => "BONE";

    public override AttachedAdapter Create(AdapterLayerRequest r) => new(r.ModulePath, new BoneLinear(r.Base, r.Options.Rank));

    internal override void Save(AdapterSaveRequest r)
    {
        var config = new SortedDictionary<string, JsonNode?>(StringComparer.Ordinal)
        {
            ["base_model_name_or_path"] = ModelFolder.Describe(r.Options.ModelFolder), ["bias"] = "none", ["exclude_modules"] = null,
            ["inference_mode"] = true, ["init_weights"] = true, ["layers_pattern"] = null, ["layers_to_transform"] = null,
            ["modules_to_save"] = null, ["peft_type"] = "BONE", ["r"] = r.Options.Rank, ["revision"] = null,
            ["target_modules"] = new JsonArray([.. r.Targets.Select(t => JsonValue.Create(t))]), ["task_type"] = "CAUSAL_LM",
        };
        var entries = r.Adapters.SelectMany(a => a.Layer.AdapterTensors().Select(kv => RunAdapterFormats.Entry(a.ModulePath, kv.Key, kv.Value))).ToList();
        AdapterFolderWriter.Write(r.Folder, RunAdapterFormats.Json(config), entries);
    }

    internal override IExportableAdapter OpenExport(string folder, PeftAdapterConfig config) => BoneExportAdapter.Open(folder, config);
}
