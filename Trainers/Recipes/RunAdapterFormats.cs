using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using QuantPeft.Formats.Peft;
using QuantPeft.Formats.Safetensors;
using QuantPeft.Memory.Planning;
using QuantPeft.Trainers.Adapters;
using QuantPeft.Trainers.Pruning;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Recipes;

/// <summary>
/// Writes the trained adapter in the PEFT format of its method (see <c>docs/formats.md</c>): LoRA and DoRA as
/// PEFT LoRA; PiSSA converted to a plain LoRA of rank 2r that applies to the ORIGINAL base; VeRA as PEFT's VeRA
/// with the shared projections saved; OSoRA under the project's own <c>peft_type: "OSORA"</c>.
/// </summary>
internal static class RunAdapterFormats
{
    /// <summary>The shared VeRA projections' keys (PEFT strips the adapter name from <c>base_model.vera_A.default</c>).</summary>
    public const string VeraAKey = "base_model.vera_A";

    /// <summary>See <see cref="VeraAKey"/>.</summary>
    public const string VeraBKey = "base_model.vera_B";

    /// <summary>OSoRA's initial singular values S_r⁰, which the residual base subtracted from W.</summary>
    public const string OsoraInitialS = "osora_S_init";

    /// <summary>The <c>peft_type</c> a run of <paramref name="method"/> writes.</summary>
    public static string PeftType(TrainingMethod method) => method switch
    {
        TrainingMethod.Vera => "VERA",
        TrainingMethod.Osora => "OSORA",
        _ => "LORA",
    };

    public static void Save(string folder, FinetuneOptions o, IReadOnlyList<AttachedAdapter> adapters, VeraSharedMatrices? vera, PruningPlan? recovery = null)
    {
        using var scope = NewDisposeScope();   // recovered LoRAM copies live until the file is written
        var targets = ModelAdapters.ResolveTargets(o.Targets);
        switch (o.Method)
        {
            case TrainingMethod.Vera:
                SaveVera(folder, o, targets, adapters, vera!);
                break;
            case TrainingMethod.Osora:
                SaveOsora(folder, o, targets, adapters);
                break;
            case TrainingMethod.Pissa:
            case TrainingMethod.Lora when o.Weights == WeightFormat.LqLora:
                SavePissaAsLora(folder, o, targets, adapters);
                break;
            default:
                // LoRAM: the adapter is saved recovered (AdapterRecovery), at the unpruned model's shapes.
                PeftAdapter.Save(folder, LoraConfig(o, targets, o.Rank, o.Alpha) with { UseDora = o.Method == TrainingMethod.Dora },
                    adapters.SelectMany(a => a.Layer.AdapterTensors().Select(kv => Entry(a.ModulePath, kv.Key,
                        (recovery is null ? null : AdapterRecovery.Expand(recovery, a.ModulePath, kv.Key, kv.Value)) ?? kv.Value))));
                break;
        }
    }

    private static PeftAdapterConfig LoraConfig(FinetuneOptions o, IReadOnlyList<string> targets, int rank, double alpha) => new()
    {
        PeftType = "LORA",
        TaskType = "CAUSAL_LM",
        BaseModelNameOrPath = ModelFolder.Describe(o.ModelFolder),
        InferenceMode = true,
        R = rank,
        LoraAlpha = alpha,
        TargetModules = PeftModuleSelector.FromNames(targets),
    };

    // PEFT's PiSSA conversion (LQ-LoRA's base W − L1·L2 = W − s·B₀A₀ is the same situation): the trained B′A′ on W_res equals W + s(B′A′ − B₀A₀) on the original W, which is the
    // LoRA A = [A′; A₀], B = [B′, −B₀] of rank 2r. Doubling α keeps s = α/r (rsLoRA would take α·√2 instead).
    private static void SavePissaAsLora(string folder, FinetuneOptions o, IReadOnlyList<string> targets, IReadOnlyList<AttachedAdapter> adapters)
    {
        var entries = new List<SafetensorsTensorEntry>();
        foreach (var a in adapters)
        {
            using var scope = NewDisposeScope();
            var now = a.Layer.AdapterTensors();
            var init = a.Initial ?? throw new RecipeException($"'{a.ModulePath}': adapter without its initial factors");
            var newA = cat([now["lora_A.weight"].detach().to(ScalarType.Float32), init["lora_A.weight"].to(ScalarType.Float32)], 0);
            var newB = cat([now["lora_B.weight"].detach().to(ScalarType.Float32), init["lora_B.weight"].to(ScalarType.Float32).neg()], 1);
            entries.Add(Entry(a.ModulePath, "lora_A.weight", newA));
            entries.Add(Entry(a.ModulePath, "lora_B.weight", newB));
        }
        PeftAdapter.Save(folder, LoraConfig(o, targets, 2 * o.Rank, 2 * o.Alpha), entries);
    }

    private static void SaveVera(string folder, FinetuneOptions o, IReadOnlyList<string> targets, IReadOnlyList<AttachedAdapter> adapters, VeraSharedMatrices vera)
    {
        var config = new SortedDictionary<string, JsonNode?>(StringComparer.Ordinal)
        {
            ["auto_mapping"] = null, ["base_model_name_or_path"] = ModelFolder.Describe(o.ModelFolder), ["bias"] = "none",
            ["d_initial"] = VeraLinear.DefaultInitialD, ["fan_in_fan_out"] = false, ["inference_mode"] = true, ["init_weights"] = true,
            ["layers_pattern"] = null, ["layers_to_transform"] = null, ["modules_to_save"] = null, ["peft_type"] = "VERA",
            ["peft_version"] = null, ["projection_prng_key"] = vera.Seed, ["r"] = vera.Rank, ["revision"] = null, ["save_projection"] = true,
            ["target_modules"] = new JsonArray([.. targets.Select(t => JsonValue.Create(t))]), ["task_type"] = "CAUSAL_LM", ["vera_dropout"] = 0.0,
        };
        var entries = new List<SafetensorsTensorEntry>
        {
            SafetensorsModelSource.Entry(VeraAKey, vera.A),
            SafetensorsModelSource.Entry(VeraBKey, vera.B),
        };
        entries.AddRange(adapters.SelectMany(a => a.Layer.AdapterTensors().Select(kv => Entry(a.ModulePath, kv.Key, kv.Value))));
        AdapterFolderWriter.Write(folder, Json(config), entries);
    }

    private static void SaveOsora(string folder, FinetuneOptions o, IReadOnlyList<string> targets, IReadOnlyList<AttachedAdapter> adapters)
    {
        var config = new SortedDictionary<string, JsonNode?>(StringComparer.Ordinal)
        {
            ["base_model_name_or_path"] = ModelFolder.Describe(o.ModelFolder), ["inference_mode"] = true, ["init_weights"] = "default",
            ["peft_type"] = "OSORA", ["r"] = o.Rank, ["target_modules"] = new JsonArray([.. targets.Select(t => JsonValue.Create(t))]),
            ["task_type"] = "CAUSAL_LM",
        };
        var entries = new List<SafetensorsTensorEntry>();
        foreach (var a in adapters)
        {
            entries.AddRange(a.Layer.AdapterTensors().Select(kv => Entry(a.ModulePath, kv.Key, kv.Value)));
            var init = a.Initial ?? throw new RecipeException($"'{a.ModulePath}': OSoRA adapter without its initial singular values");
            entries.Add(Entry(a.ModulePath, OsoraInitialS, init["osora_S"]));
        }
        AdapterFolderWriter.Write(folder, Json(config), entries);
    }

    /// <summary>The <c>peft_type</c> of the adapter in <paramref name="folder"/>.</summary>
    /// <exception cref="RecipeException">The config is missing or has no string <c>peft_type</c>.</exception>
    public static string ReadPeftType(string folder)
    {
        string path = Path.Combine(folder, PeftAdapter.ConfigFileName);
        if (!File.Exists(path)) throw new RecipeException($"{path}: missing (not an adapter folder)");
        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        return doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty("peft_type", out var t) && t.ValueKind == JsonValueKind.String
            ? t.GetString()!
            : throw new RecipeException($"{path}: \"peft_type\": expected a string such as \"LORA\"");
    }

    private static SafetensorsTensorEntry Entry(string modulePath, string local, Tensor value) =>
        SafetensorsModelSource.Entry(LoraTensorNames.Prefix + modulePath + "." + local, value);

    // json.dumps(indent=2, sort_keys=True), as PEFT writes its configs.
    private static string Json(SortedDictionary<string, JsonNode?> config)
    {
        var node = new JsonObject();
        foreach (var (k, v) in config) node[k] = v;
        return node.ToJsonString(new JsonSerializerOptions { WriteIndented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
    }
}
