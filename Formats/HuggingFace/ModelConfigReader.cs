using System.Text.Json;

namespace QuantPeft.Formats.HuggingFace;

/// <summary>
/// Turns a Hugging Face <c>config.json</c> of a llama, mistral, qwen2, qwen3, gemma2, gemma3_text or phi3 checkpoint into a
/// <see cref="ModelSpec"/>, validating it once at the boundary so nothing downstream has to.
/// </summary>
/// <remarks>
/// Optional fields take the defaults of the transformers configuration class of the family. The size
/// fields (<c>num_hidden_layers</c>, <c>hidden_size</c>, <c>intermediate_size</c>,
/// <c>num_attention_heads</c>, <c>vocab_size</c>) are required even though transformers would default
/// them: a config without them is damaged, and a silent 7B-sized default would plan the wrong model.
/// </remarks>
public static class ModelConfigReader
{
    /// <summary>The file name Hugging Face gives a model's configuration inside its folder.</summary>
    public const string FileName = "config.json";

    /// <summary>The <c>model_type</c> values this reader understands.</summary>
    public static IReadOnlyList<string> SupportedModelTypes { get; } = ModelFamily.All.Select(f => f.ModelType).ToArray();

    /// <summary>Reads <paramref name="path"/>: a config.json file, or a model folder that contains one.</summary>
    /// <exception cref="ModelConfigException">The file is missing, unreadable, not JSON, or not a supported model.</exception>
    public static ModelSpec Read(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        string file = Directory.Exists(path) ? Path.Combine(path, FileName) : path;
        if (!File.Exists(file))
        {
            string what = Directory.Exists(path) ? $"the model folder has no {FileName}" : "file not found";
            throw new ModelConfigException(file, null, what);
        }
        string json;
        try
        {
            json = File.ReadAllText(file);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ModelConfigException(file, null, $"cannot be read: {e.Message}", e);
        }
        return Parse(json, file);
    }

    /// <summary>Parses config.json text.</summary>
    /// <param name="json">The JSON text.</param>
    /// <param name="sourceName">What to call the text in error messages (usually its file path).</param>
    /// <exception cref="ModelConfigException">The text is not JSON, or not a supported model.</exception>
    public static ModelSpec Parse(string json, string sourceName = FileName)
    {
        ArgumentNullException.ThrowIfNull(json);
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(json);
        }
        catch (JsonException e)
        {
            // System.Text.Json appends its own zero-based "LineNumber: .. | BytePositionInLine: .." to the message.
            string detail = e.Message;
            int cut = detail.IndexOf(" LineNumber:", StringComparison.Ordinal);
            if (cut > 0)
                detail = detail[..cut];
            throw new ModelConfigException(sourceName, null,
                $"is not valid JSON (line {e.LineNumber + 1}, byte {e.BytePositionInLine + 1}): {detail}", e);
        }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new ModelConfigException(sourceName, null, $"must hold a JSON object, found {ConfigFields.Describe(doc.RootElement)}");
            return FromObject(new ConfigFields(doc.RootElement, sourceName));
        }
    }

    private static ModelSpec FromObject(ConfigFields f)
    {
        string modelType = f.OptionalString("model_type")
            ?? throw f.Error("model_type", $"is required (one of {ModelFamily.SupportedList}) but is missing");
        if (modelType == "gemma3")
            throw f.Error(f.Has("vision_config") ? "vision_config" : "model_type",
                "the multimodal Gemma 3 checkpoint (vision tower and text_config) is not supported; only the text-only 'gemma3_text' model is");
        if (modelType is "phimoe" or "phi3small" or "phi4mm" or "phi3_v")
            throw f.Error("model_type", $"'{modelType}' is not supported: only the dense text-only Phi-3/3.5/4 checkpoints ('phi3') are "
                + (modelType == "phimoe" ? "(Phi-3.5-MoE has mixture-of-experts layers)" : modelType == "phi3small" ? "(Phi-3-small has block-sparse attention and GeGELU)" : "(the multimodal towers are not)"));
        var family = ModelFamily.Find(modelType)
            ?? throw f.Error("model_type", $"'{modelType}' is not supported; supported model types: {ModelFamily.SupportedList}");

        int layers = f.RequiredPositiveInt("num_hidden_layers");
        int hidden = f.RequiredPositiveInt("hidden_size");
        int intermediate = f.RequiredPositiveInt("intermediate_size");
        int heads = f.RequiredPositiveInt("num_attention_heads");
        int vocab = f.RequiredPositiveInt("vocab_size");
        int kvHeads = f.OptionalPositiveInt("num_key_value_heads")
            ?? (f.IsExplicitNull("num_key_value_heads") ? heads : family.DefaultKvHeads ?? heads);
        int headDim = f.OptionalPositiveInt("head_dim") ?? family.DefaultHeadDim ?? 0;
        int maxPositions = f.OptionalPositiveInt("max_position_embeddings") ?? family.DefaultMaxPositionEmbeddings;

        if (headDim == 0 && hidden % heads != 0)
            throw f.Error("num_attention_heads",
                $"must divide hidden_size ({hidden}) when head_dim is absent, found {heads} (remainder {hidden % heads})");
        if (heads % kvHeads != 0)
            throw f.Error("num_key_value_heads",
                $"must divide num_attention_heads ({heads}), found {kvHeads}");
        if ((long)heads * (headDim > 0 ? headDim : hidden / heads) > int.MaxValue)
            throw f.Error("head_dim", $"num_attention_heads x head_dim overflows a 32-bit size ({heads} x {headDim})");

        CheckSupportedVariant(f, family);
        bool attentionBias = family.ReadsAttentionBias && (f.OptionalBool("attention_bias") ?? false);

        var (window, globalEvery) = ReadSlidingWindow(f, family, layers);
        bool gemma = family.IsGemma;
        double partialRotary = ReadPartialRotaryFactor(f, family);
        int rotaryDim = (int)((headDim > 0 ? headDim : hidden / heads) * partialRotary);
        return new ModelSpec
        {
            ModelType = family.ModelType,
            NumLayers = layers,
            HiddenSize = hidden,
            IntermediateSize = intermediate,
            NumHeads = heads,
            NumKvHeads = kvHeads,
            VocabSize = vocab,
            HeadDimOverride = headDim,
            TieWordEmbeddings = f.OptionalBool("tie_word_embeddings") ?? family.DefaultTieWordEmbeddings,
            RopeTheta = ReadRopeTheta(f, family),
            RopeScaling = ReadRopeScaling(f, maxPositions, family == ModelFamily.Phi3 ? ReadOriginalContext(f) : null, rotaryDim / 2),
            RmsNormEps = f.OptionalPositiveDouble("rms_norm_eps") ?? family.FamilyRmsNormEps,
            PartialRotaryFactor = partialRotary,
            AttentionBias = family.QkvBias || attentionBias,
            OutputProjectionBias = attentionBias,
            MaxPositionEmbeddings = maxPositions,
            SlidingWindow = window,
            GlobalLayerEvery = globalEvery,
            QkNorm = family == ModelFamily.Qwen3 || family == ModelFamily.Gemma3Text,
            QueryPreAttnScalar = gemma ? f.OptionalPositiveDouble("query_pre_attn_scalar") ?? 256 : null,
            AttnLogitSoftcap = family == ModelFamily.Gemma2 ? f.OptionalPositiveDoubleOrNull("attn_logit_softcapping", 50.0)
                : gemma ? f.OptionalPositiveDoubleOrNull("attn_logit_softcapping", null) : null,
            FinalLogitSoftcap = family == ModelFamily.Gemma2 ? f.OptionalPositiveDoubleOrNull("final_logit_softcapping", 30.0)
                : gemma ? f.OptionalPositiveDoubleOrNull("final_logit_softcapping", null) : null,
            RopeLocalTheta = family == ModelFamily.Gemma3Text ? f.OptionalPositiveDouble("rope_local_base_freq") ?? 10000.0 : null,
        };
    }

    /// <summary>
    /// Rejects configs whose architecture <see cref="ModelSpec"/> cannot describe, rather than
    /// producing a spec that silently disagrees with the checkpoint.
    /// </summary>
    private static void CheckSupportedVariant(ConfigFields f, ModelFamily family)
    {
        // Gemma's modeling code reads hidden_activation; its configs often carry hidden_act beside it.
        string actField = family.IsGemma && f.Has("hidden_activation") ? "hidden_activation" : "hidden_act";
        string act = f.OptionalString(actField) ?? family.Activation;
        if (act != family.Activation)
            throw f.Error(actField, $"only '{family.Activation}' (the gated MLP of {family.ModelType}) is supported, found '{act}'");
        // Mixture-of-experts layers (qwen3_moe, mixtral-style fields) would need a router this decoder does not have.
        foreach (string moe in (string[])["num_experts", "num_local_experts", "n_routed_experts"])
            if (f.OptionalInt(moe) is > 0)
                throw f.Error(moe, "mixture-of-experts layers are not supported");
        if (family == ModelFamily.Llama && f.OptionalBool("mlp_bias") == true)
            throw f.Error("mlp_bias", "true is not supported: the MLP projections are expected to have no biases");
        if ((family == ModelFamily.Qwen2 || family == ModelFamily.Qwen3) && f.OptionalBool("use_sliding_window") == true)
            throw f.Error("use_sliding_window", $"true is not supported: {family.ModelType} applies the window to only some layers (max_window_layers)");
    }

    private static double ReadRopeTheta(ConfigFields f, ModelFamily family) =>
        f.OptionalPositiveDouble("rope_theta")
        ?? f.OptionalObject("rope_parameters")?.OptionalPositiveDouble("rope_theta")
        ?? family.FamilyRopeTheta;

    /// <summary>
    /// <c>rope_scaling</c> as written by transformers 4; transformers 5 saves the same keys inside
    /// <c>rope_parameters</c> instead, so that is read when <c>rope_scaling</c> is absent.
    /// </summary>
    private static RopeScaling? ReadRopeScaling(ConfigFields f, int maxPositions, int? originalContext, int rotaryFrequencies)
    {
        if (f.OptionalObject("rope_scaling") is { } scaling)
            return RopeScalingJson.Parse(scaling, maxPositions, originalContext, rotaryFrequencies);
        if (f.OptionalObject("rope_parameters") is { } parameters
            && (parameters.Has("rope_type") || parameters.Has("type")))
            return RopeScalingJson.Parse(parameters, maxPositions, originalContext, rotaryFrequencies);
        return null;
    }

    /// <summary>Phi-3's top-level <c>original_max_position_embeddings</c> (its configuration class defaults it to 4096).</summary>
    private static int ReadOriginalContext(ConfigFields f) => f.OptionalPositiveInt("original_max_position_embeddings") ?? 4096;

    /// <summary>
    /// <c>partial_rotary_factor</c> (Phi-4-mini: 0.75), top level or inside transformers 5's <c>rope_parameters</c>; only
    /// phi3's modeling code reads it, so another family carrying a value other than 1 is refused rather than ignored.
    /// </summary>
    private static double ReadPartialRotaryFactor(ConfigFields f, ModelFamily family)
    {
        const string name = "partial_rotary_factor";
        double? value = f.OptionalPositiveDouble(name) ?? f.OptionalObject("rope_parameters")?.OptionalPositiveDouble(name);
        if (value is null or 1.0)
            return 1.0;
        if (family != ModelFamily.Phi3)
            throw f.Error(name, $"{value} is not supported for {family.ModelType} (its modeling code rotates the whole head)");
        if (value > 1.0)
            throw f.Error(name, $"must be at most 1, found {value}");
        int headDim = f.OptionalPositiveInt("head_dim") ?? f.RequiredPositiveInt("hidden_size") / f.RequiredPositiveInt("num_attention_heads");
        int rotary = (int)(headDim * value.Value);
        if (rotary < 2 || rotary % 2 != 0)
            throw f.Error(name, $"must rotate an even, non-zero number of each head's {headDim} dimensions, found {value} ({rotary})");
        return value.Value;
    }

    /// <summary>The window and, for Gemma, which layers attend globally (see <see cref="ModelSpec.GlobalLayerEvery"/>).</summary>
    private static (int? Window, int GlobalEvery) ReadSlidingWindow(ConfigFields f, ModelFamily family, int layers)
    {
        if (family != ModelFamily.Mistral && family != ModelFamily.Phi3 && !family.IsGemma)
            return (null, 0);
        // Mistral v0.2+ writes "sliding_window": null to turn the window off; absent means the 4096 default.
        int? window = f.IsExplicitNull("sliding_window") ? null : f.OptionalPositiveInt("sliding_window") ?? family.DefaultSlidingWindow;
        // Phi-3, like Mistral, applies its window (Phi-3-mini-4k: 2047) to every layer.
        if (family == ModelFamily.Mistral || family == ModelFamily.Phi3 || window is null)
            return (window, 0);
        if (f.OptionalStringArray("layer_types") is not { } types)
        {
            // Without layer_types: Gemma 2 alternates local and global; Gemma 3 has sliding_window_pattern (default 6).
            int pattern = family == ModelFamily.Gemma2 ? 2 : f.OptionalPositiveInt("sliding_window_pattern") ?? 6;
            return (window, pattern);
        }
        if (types.Length != layers)
            throw f.Error("layer_types", $"must list one entry per layer ({layers}), found {types.Length}");
        for (int i = 0; i < types.Length; i++)
            if (types[i] is not ("sliding_attention" or "full_attention"))
                throw f.Error($"layer_types[{i}]", $"must be 'sliding_attention' or 'full_attention', found '{types[i]}'");
        if (types.All(t => t == "full_attention"))
            return (null, 0);
        if (types.All(t => t == "sliding_attention"))
            return (window, 0);
        for (int every = 2; every <= layers; every++)
            if (Enumerable.Range(0, layers).All(i => (types[i] == "full_attention") == ((i + 1) % every == 0)))
                return (window, every);
        throw f.Error("layer_types",
            "only a regular pattern (every n-th layer full_attention, the others sliding_attention) is supported");
    }
}
