using System.Text.Json.Nodes;
using QuantPeft.Formats.Peft;
using QuantPeft.Formats.Safetensors;
using QuantPeft.Memory.Planning;
using QuantPeft.Trainers.Export;
using QuantPeft.Trainers.Recipes;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Adapters.Methods;

/// <summary>
/// OSoRA: <see cref="OsoraLinear"/>, trained singular values S_r and an output vector over the frozen U_r, V_rᵀ of W's
/// top-r SVD, computed as the weight streams in. PEFT has no OSoRA, so it is saved under the project's own
/// <c>peft_type: "OSORA"</c> with the initial S_r⁰ the residual base subtracted (docs/formats.md).
/// </summary>
internal sealed class OsoraDescriptor : AdapterDescriptor
{
    public override TrainingMethod Method => TrainingMethod.Osora;
    public override string DisplayName => "OSoRA";
    public override string PeftType => "OSORA";

    public override LoadTimeInit LoadInit { get; } = (weight, rank, _) => SvdInit.Osora(weight, rank);

    public override AttachedAdapter Create(AdapterLayerRequest r)
    {
        var f = r.Factors ?? throw new AdapterException($"'{r.ModulePath}': OSoRA needs the factors computed on load");
        var osora = new OsoraLinear(r.Base, f.First, f.Second, f.Third!);
        return new AttachedAdapter(r.ModulePath, osora) { Initial = new Dictionary<string, Tensor> { ["osora_S"] = f.Second.detach().clone() } };
    }

    internal override void Save(AdapterSaveRequest r)
    {
        var config = new SortedDictionary<string, JsonNode?>(StringComparer.Ordinal)
        {
            ["base_model_name_or_path"] = ModelFolder.Describe(r.Options.ModelFolder), ["inference_mode"] = true, ["init_weights"] = "default",
            ["peft_type"] = "OSORA", ["r"] = r.Options.Rank, ["target_modules"] = new JsonArray([.. r.Targets.Select(t => JsonValue.Create(t))]),
            ["task_type"] = "CAUSAL_LM",
        };
        var entries = new List<SafetensorsTensorEntry>();
        foreach (var a in r.Adapters)
        {
            entries.AddRange(a.Layer.AdapterTensors().Select(kv => RunAdapterFormats.Entry(a.ModulePath, kv.Key, kv.Value)));
            var init = a.Initial ?? throw new RecipeException($"'{a.ModulePath}': OSoRA adapter without its initial singular values");
            entries.Add(RunAdapterFormats.Entry(a.ModulePath, RunAdapterFormats.OsoraInitialS, init["osora_S"]));
        }
        AdapterFolderWriter.Write(r.Folder, RunAdapterFormats.Json(config), entries);
    }

    internal override IExportableAdapter OpenExport(string folder, PeftAdapterConfig config) => OsoraExportAdapter.Open(folder, config);
}
