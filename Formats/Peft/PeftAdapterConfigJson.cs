using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using K = QuantPeft.Formats.Peft.PeftErrorKind;

namespace QuantPeft.Formats.Peft;

/// <summary>
/// Reads and writes <c>adapter_config.json</c> as PEFT does: only <c>peft_type</c> is required, missing
/// keys take PEFT's defaults, keys PEFT does not know are kept and reported as warnings, and the file
/// is written with two-space indentation and sorted keys (<c>json.dumps(indent=2, sort_keys=True)</c>).
/// </summary>
public static class PeftAdapterConfigJson
{
    // Keys PEFT's LoraConfig defines that PeftAdapterConfig keeps verbatim instead of interpreting.
    private static readonly HashSet<string> PassThroughKeys = new(StringComparer.Ordinal)
    {
        "megatron_config", "megatron_core", "loftq_config", "eva_config", "corda_config", "lora_ga_config",
        "layer_replication", "target_parameters", "auto_mapping", "trainable_token_indices", "use_qalora",
        "qalora_group_size", "ensure_weight_tying", "alora_invocation_tokens", "arrow_config", "use_bdlora",
    };

    /// <summary>
    /// PEFT's defaults for the LoraConfig keys <see cref="PeftAdapterConfig"/> does not interpret; a config
    /// built in code starts with these in <see cref="PeftAdapterConfig.AdditionalKeys"/>, so its file
    /// carries PEFT's full key set.
    /// </summary>
    public static IReadOnlyDictionary<string, JsonElement> DefaultAdditionalKeys { get; } = ParseDefaults();

    private static Dictionary<string, JsonElement> ParseDefaults()
    {
        using var doc = JsonDocument.Parse("""
            {"auto_mapping": null, "corda_config": null, "eva_config": null, "layer_replication": null, "loftq_config": {},
             "lora_ga_config": null, "megatron_config": null, "megatron_core": "megatron.core", "target_parameters": null}
            """);
        return doc.RootElement.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.Clone(), StringComparer.Ordinal);
    }

    private static readonly string[] TaskTypes = ["CAUSAL_LM", "SEQ_CLS", "SEQ_2_SEQ_LM", "TOKEN_CLS", "QUESTION_ANS", "FEATURE_EXTRACTION"];

    /// <summary>Reads and validates <paramref name="path"/>.</summary>
    /// <exception cref="PeftFormatException">The file is missing, not JSON, lacks <c>peft_type</c>, or has an invalid value.</exception>
    public static PeftAdapterConfig Read(string path)
    {
        string text;
        try
        {
            text = File.ReadAllText(path, Encoding.UTF8);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new PeftFormatException(K.MissingConfig, path, null, $"cannot read the adapter config ({e.Message})", e);
        }
        return Parse(text, path);
    }

    /// <summary>Parses config JSON; <paramref name="sourcePath"/> names the file in errors and warnings.</summary>
    public static PeftAdapterConfig Parse(string json, string sourcePath)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(json, new JsonDocumentOptions { AllowDuplicateProperties = false });
        }
        catch (JsonException e)
        {
            throw new PeftFormatException(K.InvalidJson, sourcePath, null, $"not valid JSON ({e.Message})", e);
        }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new PeftFormatException(K.InvalidJson, sourcePath, null, $"the config must be a JSON object, found {doc.RootElement.ValueKind}");
            return FromObject(doc.RootElement, sourcePath);
        }
    }

    private static PeftAdapterConfig FromObject(JsonElement root, string path)
    {
        if (!root.TryGetProperty("peft_type", out var peftType) || peftType.ValueKind == JsonValueKind.Null)
            throw new PeftFormatException(K.MissingPeftType, path, "peft_type", "missing; PEFT requires it (e.g. \"LORA\")");
        var r = new PeftConfigValueReader(path);
        var config = new PeftAdapterConfig { PeftType = r.String(peftType, "peft_type")! };
        var additional = new Dictionary<string, JsonElement>(StringComparer.Ordinal);
        var warnings = new List<string>();
        foreach (var p in root.EnumerateObject())
        {
            var v = p.Value;
            config = p.Name switch
            {
                "peft_type" => config,
                "task_type" => config with { TaskType = r.OneOf(v, p.Name, TaskTypes, nullable: true) },
                "base_model_name_or_path" => config with { BaseModelNameOrPath = r.String(v, p.Name, nullable: true) },
                "revision" => config with { Revision = r.String(v, p.Name, nullable: true) },
                "peft_version" => config with { PeftVersion = r.String(v, p.Name, nullable: true) },
                "inference_mode" => config with { InferenceMode = r.Bool(v, p.Name) },
                "fan_in_fan_out" => config with { FanInFanOut = r.Bool(v, p.Name) },
                "use_rslora" => config with { UseRslora = r.Bool(v, p.Name) },
                "use_dora" => config with { UseDora = r.Bool(v, p.Name) },
                "lora_bias" => config with { LoraBias = r.Bool(v, p.Name) },
                "r" => config with { R = r.PositiveInt(v, p.Name) },
                "lora_alpha" => config with { LoraAlpha = r.Number(v, p.Name) },
                "lora_dropout" => config with { LoraDropout = r.Probability(v, p.Name) },
                "bias" => config with { Bias = r.OneOf(v, p.Name, ["none", "all", "lora_only"], nullable: false)! },
                "target_modules" => config with { TargetModules = r.Selector(v, p.Name) },
                "exclude_modules" => config with { ExcludeModules = r.Selector(v, p.Name) },
                "layers_pattern" => config with { LayersPattern = r.Selector(v, p.Name) },
                "modules_to_save" => config with { ModulesToSave = r.StringList(v, p.Name) },
                "init_lora_weights" => config with { InitLoraWeights = r.InitWeights(v, p.Name) },
                "layers_to_transform" => config with { LayersToTransform = r.IntList(v, p.Name) },
                "rank_pattern" => config with { RankPattern = r.Pattern(v, p.Name, e => r.PositiveInt(e, p.Name)) },
                "alpha_pattern" => config with { AlphaPattern = r.Pattern(v, p.Name, e => r.Number(e, p.Name)) },
                _ => Keep(config, p, additional, warnings, path),
            };
        }
        return config with { AdditionalKeys = additional, Warnings = warnings };
    }

    private static PeftAdapterConfig Keep(PeftAdapterConfig config, JsonProperty p, Dictionary<string, JsonElement> additional, List<string> warnings, string path)
    {
        additional[p.Name] = p.Value.Clone();
        if (!PassThroughKeys.Contains(p.Name))
            warnings.Add($"'{path}': unknown key '{p.Name}' (not a PEFT LoraConfig field; written by a newer PEFT?), kept as is");
        return config;
    }

    /// <summary>Renders the config as PEFT writes it: the modelled keys and <see cref="PeftAdapterConfig.AdditionalKeys"/>, sorted, indented by two spaces.</summary>
    public static string Serialize(PeftAdapterConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        var keys = new SortedDictionary<string, Action<Utf8JsonWriter>>(StringComparer.Ordinal);
        foreach (var (k, v) in config.AdditionalKeys)
            keys[k] = v.WriteTo;
        keys["peft_type"] = w => w.WriteStringValue(config.PeftType);
        keys["task_type"] = w => WriteString(w, config.TaskType);
        keys["base_model_name_or_path"] = w => WriteString(w, config.BaseModelNameOrPath);
        keys["revision"] = w => WriteString(w, config.Revision);
        keys["peft_version"] = w => WriteString(w, config.PeftVersion);
        keys["inference_mode"] = w => w.WriteBooleanValue(config.InferenceMode);
        keys["fan_in_fan_out"] = w => w.WriteBooleanValue(config.FanInFanOut);
        keys["use_rslora"] = w => w.WriteBooleanValue(config.UseRslora);
        keys["use_dora"] = w => w.WriteBooleanValue(config.UseDora);
        keys["lora_bias"] = w => w.WriteBooleanValue(config.LoraBias);
        keys["r"] = w => w.WriteNumberValue(config.R);
        keys["lora_alpha"] = w => WriteNumber(w, config.LoraAlpha);
        keys["lora_dropout"] = w => WriteNumber(w, config.LoraDropout);
        keys["bias"] = w => w.WriteStringValue(config.Bias);
        keys["target_modules"] = w => WriteSelector(w, config.TargetModules);
        keys["exclude_modules"] = w => WriteSelector(w, config.ExcludeModules);
        keys["layers_pattern"] = w => WriteSelector(w, config.LayersPattern);
        keys["modules_to_save"] = w => WriteList(w, config.ModulesToSave, w.WriteStringValue);
        keys["layers_to_transform"] = w => WriteList(w, config.LayersToTransform, w.WriteNumberValue);
        keys["init_lora_weights"] = w =>
        {
            if (config.InitLoraWeights.Method is { } m) w.WriteStringValue(m);
            else w.WriteBooleanValue(config.InitLoraWeights.Flag ?? true);
        };
        keys["rank_pattern"] = w => WriteMap(w, config.RankPattern, v => w.WriteNumberValue(v));
        keys["alpha_pattern"] = w => WriteMap(w, config.AlphaPattern, v => WriteNumber(w, v));

        using var stream = new MemoryStream();
        using (var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            json.WriteStartObject();
            foreach (var (k, write) in keys)
            {
                json.WritePropertyName(k);
                write(json);
            }
            json.WriteEndObject();
        }
        return Encoding.UTF8.GetString(stream.ToArray());
    }

    private static void WriteString(Utf8JsonWriter w, string? s)
    {
        if (s is null) w.WriteNullValue();
        else w.WriteStringValue(s);
    }

    // Python writes integral ints without a fraction; PEFT reads lora_alpha back as an int.
    private static void WriteNumber(Utf8JsonWriter w, double v)
    {
        if (v == Math.Floor(v) && Math.Abs(v) < 1e15) w.WriteNumberValue((long)v);
        else w.WriteNumberValue(v);
    }

    private static void WriteSelector(Utf8JsonWriter w, PeftModuleSelector? s)
    {
        if (s?.Pattern is { } p) w.WriteStringValue(p);
        else WriteList(w, s?.Names, w.WriteStringValue);
    }

    private static void WriteList<T>(Utf8JsonWriter w, IReadOnlyList<T>? items, Action<T> write)
    {
        if (items is null)
        {
            w.WriteNullValue();
            return;
        }
        w.WriteStartArray();
        foreach (var item in items)
            write(item);
        w.WriteEndArray();
    }

    private static void WriteMap<T>(Utf8JsonWriter w, IReadOnlyDictionary<string, T> map, Action<T> write)
    {
        w.WriteStartObject();
        foreach (var (k, v) in map.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            w.WritePropertyName(k);
            write(v);
        }
        w.WriteEndObject();
    }
}
