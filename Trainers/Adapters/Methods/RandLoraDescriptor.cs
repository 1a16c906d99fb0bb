using System.Text.Json.Nodes;
using QuantPeft.Formats.Peft;
using QuantPeft.Formats.Safetensors;
using QuantPeft.Memory.Planning;
using QuantPeft.Trainers.Export;
using QuantPeft.Trainers.Model;
using QuantPeft.Trainers.Recipes;

namespace QuantPeft.Trainers.Adapters.Methods;

/// <summary>
/// RandLoRA: <see cref="RandLoraLinear"/>, trained diagonal scalings of frozen random bases every target shares
/// (<see cref="RandLoraBases"/>, sized as PEFT sizes them from the widest target). Saved as PEFT's RANDLORA with the
/// bases (<c>save_projection: true</c>), so PEFT loads the folder without regenerating them.
/// </summary>
internal sealed class RandLoraDescriptor : AdapterDescriptor
{
    public override TrainingMethod Method => TrainingMethod.RandLora;
    public override string DisplayName => "RandLoRA";
    public override string PeftType => "RANDLORA";

    public override bool HasSharedState => true;

    public override ISharedAdapterState CreateShared(CausalLm model, IReadOnlyList<string> targets, int rank, long seed)
    {
        var (maxIn, maxOut) = ModelAdapters.VeraDimensions(model, targets);
        return new RandLoraBases(rank, maxIn, maxOut, seed, device: model.LmHeadWeight.device);
    }

    public override AttachedAdapter Create(AdapterLayerRequest r)
    {
        var bases = r.Shared as RandLoraBases ?? throw new AdapterException("RandLoRA needs its shared bases; build them with CreateShared");
        return new AttachedAdapter(r.ModulePath, new RandLoraLinear(r.Base, bases, r.Options.Alpha, r.Options.Dropout));
    }

    internal override void Save(AdapterSaveRequest r)
    {
        var bases = (RandLoraBases)r.Shared!;
        var config = new SortedDictionary<string, JsonNode?>(StringComparer.Ordinal)
        {
            ["auto_mapping"] = null, ["base_model_name_or_path"] = ModelFolder.Describe(r.Options.ModelFolder), ["bias"] = "none",
            ["fan_in_fan_out"] = false, ["inference_mode"] = true, ["init_weights"] = true, ["layers_pattern"] = null,
            ["layers_to_transform"] = null, ["modules_to_save"] = null, ["peft_type"] = "RANDLORA", ["peft_version"] = null,
            ["projection_prng_key"] = bases.Seed, ["r"] = bases.Rank, ["randlora_alpha"] = Number(r.Options.Alpha), ["randlora_dropout"] = 0.0,
            ["revision"] = null, ["save_projection"] = true, ["sparse"] = false, ["target_modules"] = new JsonArray([.. r.Targets.Select(t => JsonValue.Create(t))]),
            ["task_type"] = "CAUSAL_LM", ["very_sparse"] = false,
        };
        var entries = new List<SafetensorsTensorEntry>
        {
            SafetensorsModelSource.Entry(RandLoraBases.AKey, bases.A),
            SafetensorsModelSource.Entry(RandLoraBases.BKey, bases.B),
        };
        entries.AddRange(r.Adapters.SelectMany(a => a.Layer.AdapterTensors().Select(kv => RunAdapterFormats.Entry(a.ModulePath, kv.Key, kv.Value))));
        AdapterFolderWriter.Write(r.Folder, RunAdapterFormats.Json(config), entries);
    }

    // PEFT types randlora_alpha as an int; a whole α is written as one.
    private static JsonNode Number(double alpha) => alpha == Math.Floor(alpha) && Math.Abs(alpha) < int.MaxValue ? JsonValue.Create((int)alpha) : JsonValue.Create(alpha);

    internal override IExportableAdapter OpenExport(string folder, PeftAdapterConfig config) => RandLoraExportAdapter.Open(folder, config);
}
