using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using QuantPeft.Formats.Peft;
using QuantPeft.Formats.Safetensors;
using QuantPeft.Memory.Planning;
using QuantPeft.Trainers.Adapters;
using QuantPeft.Trainers.Adapters.Methods;
using QuantPeft.Trainers.Pruning;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Recipes;

/// <summary>
/// Writes the trained adapter in the PEFT format of its method (see <c>docs/formats.md</c>) through the method's
/// <see cref="AdapterDescriptor"/>, and holds the pieces the descriptors share: PEFT LoRA (LoRA, DoRA, LoRAM), the
/// rank-2r LoRA on the ORIGINAL base (PiSSA, LQ-LoRA), the tensor keys and the config's JSON form.
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
    public static string PeftType(TrainingMethod method) => AdapterRegistry.Of(method).PeftType;

    /// <summary>Writes the run's adapter in its method's format (<see cref="AdapterDescriptor.Save"/>).</summary>
    public static void Save(string folder, FinetuneOptions o, IReadOnlyList<AttachedAdapter> adapters, IDisposable? shared, PruningPlan? recovery = null)
    {
        using var scope = NewDisposeScope();   // recovered LoRAM copies live until the file is written
        AdapterRegistry.Of(o.Method).Save(new AdapterSaveRequest(folder, o, ModelAdapters.ResolveTargets(o.Targets), adapters, shared, recovery));
    }

    /// <summary>The initial A and B a LoRA started from (f32 copies), kept to export it relative to the original W.</summary>
    public static Dictionary<string, Tensor> InitialPair(SvdInitFactors f) =>
        new() { ["lora_A.weight"] = f.First.detach().clone(), ["lora_B.weight"] = f.Second.detach().clone() };

    /// <summary>PEFT LoRA (DoRA with <c>use_dora</c>); a LoRAM adapter is saved recovered (AdapterRecovery), at the unpruned model's shapes.</summary>
    public static void SaveLora(AdapterSaveRequest r, bool useDora) =>
        PeftAdapter.Save(r.Folder, LoraConfig(r.Options, r.Targets, r.Options.Rank, r.Options.Alpha) with { UseDora = useDora },
            r.Adapters.SelectMany(a => a.Layer.AdapterTensors().Select(kv => Entry(a.ModulePath, kv.Key,
                (r.Recovery is null ? null : AdapterRecovery.Expand(r.Recovery, a.ModulePath, kv.Key, kv.Value)) ?? kv.Value))));

    /// <summary>The PEFT LoRA config of a run: one rank and α for every target (patterns added by the caller).</summary>
    public static PeftAdapterConfig LoraConfig(FinetuneOptions o, IReadOnlyList<string> targets, int rank, double alpha) => new()
    {
        PeftType = "LORA",
        TaskType = "CAUSAL_LM",
        BaseModelNameOrPath = ModelFolder.Describe(o.ModelFolder),
        InferenceMode = true,
        R = rank,
        LoraAlpha = alpha,
        TargetModules = PeftModuleSelector.FromNames(targets),
    };

    /// <summary>
    /// PEFT's PiSSA conversion (LQ-LoRA's base W − L1·L2 = W − s·B₀A₀ is the same situation): the trained B′A′ on W_res
    /// equals W + s(B′A′ − B₀A₀) on the original W, which is the LoRA A = [A′; A₀], B = [B′, −B₀] of rank 2r. Doubling α
    /// keeps s = α/r (rsLoRA would take α·√2 instead).
    /// </summary>
    public static void SaveAsRank2rLora(AdapterSaveRequest r)
    {
        var entries = new List<SafetensorsTensorEntry>();
        foreach (var a in r.Adapters)
        {
            using var scope = NewDisposeScope();
            var now = a.Layer.AdapterTensors();
            var init = a.Initial ?? throw new RecipeException($"'{a.ModulePath}': adapter without its initial factors");
            var newA = cat([now["lora_A.weight"].detach().to(ScalarType.Float32), init["lora_A.weight"].to(ScalarType.Float32)], 0);
            var newB = cat([now["lora_B.weight"].detach().to(ScalarType.Float32), init["lora_B.weight"].to(ScalarType.Float32).neg()], 1);
            entries.Add(Entry(a.ModulePath, "lora_A.weight", newA));
            entries.Add(Entry(a.ModulePath, "lora_B.weight", newB));
        }
        PeftAdapter.Save(r.Folder, LoraConfig(r.Options, r.Targets, 2 * r.Options.Rank, 2 * r.Options.Alpha), entries);
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

    /// <summary>One adapter tensor under its PEFT key.</summary>
    public static SafetensorsTensorEntry Entry(string modulePath, string local, Tensor value) =>
        SafetensorsModelSource.Entry(LoraTensorNames.Prefix + modulePath + "." + local, value);

    /// <summary>A config as PEFT writes it: <c>json.dumps(indent=2, sort_keys=True)</c>.</summary>
    public static string Json(SortedDictionary<string, JsonNode?> config)
    {
        var node = new JsonObject();
        foreach (var (k, v) in config) node[k] = v;
        return node.ToJsonString(new JsonSerializerOptions { WriteIndented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
    }
}
