using System.Text.Json.Nodes;
using QuantPeft.Formats.Peft;
using QuantPeft.Formats.Safetensors;
using QuantPeft.Memory.Planning;
using QuantPeft.Trainers.Export;
using QuantPeft.Trainers.Model;
using QuantPeft.Trainers.Recipes;

namespace QuantPeft.Trainers.Adapters.Methods;

/// <summary>
/// VeRA: <see cref="VeraLinear"/>, trained vectors λ_d, λ_b over one pair of frozen random matrices every target shares
/// (<see cref="VeraSharedMatrices"/>, sized to the widest target). Saved as PEFT's VeRA with the shared projections.
/// </summary>
internal sealed class VeraDescriptor : AdapterDescriptor
{
    public override TrainingMethod Method => TrainingMethod.Vera;
    public override string DisplayName => "VeRA";
    public override string PeftType => "VERA";

    public override bool HasSharedState => true;

    public override ISharedAdapterState CreateShared(CausalLm model, IReadOnlyList<string> targets, int rank, long seed)
    {
        var (maxIn, maxOut) = ModelAdapters.VeraDimensions(model, targets);
        return new VeraSharedMatrices(rank, maxIn, maxOut, seed, device: model.LmHeadWeight.device);
    }

    public override AttachedAdapter Create(AdapterLayerRequest r)
    {
        var shared = r.Shared as VeraSharedMatrices ?? throw new AdapterException("VeRA needs its shared matrices; build them with ModelAdapters.VeraDimensions");
        return new AttachedAdapter(r.ModulePath, new VeraLinear(r.Base, shared, r.Options.Dropout));
    }

    internal override void Save(AdapterSaveRequest r)
    {
        var vera = (VeraSharedMatrices)r.Shared!;
        var config = new SortedDictionary<string, JsonNode?>(StringComparer.Ordinal)
        {
            ["auto_mapping"] = null, ["base_model_name_or_path"] = ModelFolder.Describe(r.Options.ModelFolder), ["bias"] = "none",
            ["d_initial"] = VeraLinear.DefaultInitialD, ["fan_in_fan_out"] = false, ["inference_mode"] = true, ["init_weights"] = true,
            ["layers_pattern"] = null, ["layers_to_transform"] = null, ["modules_to_save"] = null, ["peft_type"] = "VERA",
            ["peft_version"] = null, ["projection_prng_key"] = vera.Seed, ["r"] = vera.Rank, ["revision"] = null, ["save_projection"] = true,
            ["target_modules"] = new JsonArray([.. r.Targets.Select(t => JsonValue.Create(t))]), ["task_type"] = "CAUSAL_LM", ["vera_dropout"] = 0.0,
        };
        var entries = new List<SafetensorsTensorEntry>
        {
            SafetensorsModelSource.Entry(RunAdapterFormats.VeraAKey, vera.A),
            SafetensorsModelSource.Entry(RunAdapterFormats.VeraBKey, vera.B),
        };
        entries.AddRange(r.Adapters.SelectMany(a => a.Layer.AdapterTensors().Select(kv => RunAdapterFormats.Entry(a.ModulePath, kv.Key, kv.Value))));
        AdapterFolderWriter.Write(r.Folder, RunAdapterFormats.Json(config), entries);
    }

    internal override IExportableAdapter OpenExport(string folder, PeftAdapterConfig config) => VeraExportAdapter.Open(folder, config);
}
