using System.Text;
using System.Text.Json;

namespace QuantPeft.Formats.HuggingFace;

/// <summary>
/// Writes a <see cref="ModelSpec"/> as a Hugging Face <c>config.json</c> (keys sorted, two-space indent,
/// as transformers saves them), so that a folder we create loads in transformers and in our reader alike.
/// </summary>
public static class ModelConfigWriter
{
    /// <summary>Renders <paramref name="spec"/> as config.json text.</summary>
    /// <param name="spec">The model to describe.</param>
    /// <param name="torchDtype">
    /// Optional <c>torch_dtype</c> of the weights stored next to the config (<c>bfloat16</c>, <c>float16</c>,
    /// <c>float32</c>); omitted when null, since the spec itself carries no dtype.
    /// </param>
    /// <exception cref="ArgumentException">
    /// The spec cannot be expressed in its family's config.json (for example a qwen2 spec without q/k/v
    /// biases, or a llama spec whose q/k/v and o biases differ), or it is not a valid model. The written
    /// text is parsed back and compared with the spec, so what this returns always reads back equal.
    /// </exception>
    public static string ToJson(ModelSpec spec, string? torchDtype = null)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var family = ModelFamily.Find(spec.ModelType)
            ?? throw new ArgumentException($"model type '{spec.ModelType}' is not supported; supported: {ModelFamily.SupportedList}", nameof(spec));

        var fields = new SortedDictionary<string, Action<Utf8JsonWriter>>(StringComparer.Ordinal)
        {
            ["architectures"] = w => { w.WriteStartArray(); w.WriteStringValue(family.Architecture); w.WriteEndArray(); },
            ["hidden_act"] = w => w.WriteStringValue(family.Activation),
            ["hidden_size"] = w => w.WriteNumberValue(spec.HiddenSize),
            ["intermediate_size"] = w => w.WriteNumberValue(spec.IntermediateSize),
            ["max_position_embeddings"] = w => w.WriteNumberValue(spec.MaxPositionEmbeddings),
            ["model_type"] = w => w.WriteStringValue(family.ModelType),
            ["num_attention_heads"] = w => w.WriteNumberValue(spec.NumHeads),
            ["num_hidden_layers"] = w => w.WriteNumberValue(spec.NumLayers),
            ["num_key_value_heads"] = w => w.WriteNumberValue(spec.NumKvHeads),
            ["rms_norm_eps"] = w => ConfigJsonNumbers.WriteDouble(w, spec.RmsNormEps),
            ["rope_scaling"] = w =>
            {
                if (spec.RopeScaling is null) w.WriteNullValue();
                else RopeScalingJson.Write(w, spec.RopeScaling, spec.MaxPositionEmbeddings);
            },
            ["rope_theta"] = w => ConfigJsonNumbers.WriteDouble(w, spec.RopeTheta),
            ["tie_word_embeddings"] = w => w.WriteBooleanValue(spec.TieWordEmbeddings),
            ["vocab_size"] = w => w.WriteNumberValue(spec.VocabSize),
        };
        if (spec.HeadDimOverride > 0)
            fields["head_dim"] = w => w.WriteNumberValue(spec.HeadDimOverride);
        if (torchDtype is not null)
            fields["torch_dtype"] = w => w.WriteStringValue(torchDtype);
        if (family == ModelFamily.Llama)
        {
            fields["attention_bias"] = w => w.WriteBooleanValue(spec.AttentionBias);
            fields["mlp_bias"] = w => w.WriteBooleanValue(false);
        }
        if (family == ModelFamily.Mistral)
        {
            fields["sliding_window"] = w =>
            {
                if (spec.SlidingWindow is { } window) w.WriteNumberValue(window);
                else w.WriteNullValue();
            };
        }
        if (family == ModelFamily.Qwen2 || family == ModelFamily.Qwen3)
            fields["use_sliding_window"] = w => w.WriteBooleanValue(false);
        if (family == ModelFamily.Qwen3)
            fields["attention_bias"] = w => w.WriteBooleanValue(spec.AttentionBias);
        if (family.IsGemma)
            AddGemmaFields(fields, spec, family);
        if (family == ModelFamily.Phi3)
            AddPhi3Fields(fields, spec);

        var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            foreach (var (key, write) in fields)
            {
                w.WritePropertyName(key);
                write(w);
            }
            w.WriteEndObject();
        }
        string json = Encoding.UTF8.GetString(buffer.ToArray()) + "\n";
        CheckRoundTrip(spec, json);
        return json;
    }

    /// <summary>
    /// Writes <c>config.json</c> into <paramref name="folder"/> (created if needed), atomically: the text
    /// goes to a temporary file that is renamed over the target, so a failure leaves no partial file.
    /// </summary>
    /// <returns>The path of the written file.</returns>
    /// <exception cref="ArgumentException">See <see cref="ToJson"/>.</exception>
    public static string WriteToFolder(ModelSpec spec, string folder, string? torchDtype = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        string json = ToJson(spec, torchDtype);
        Directory.CreateDirectory(folder);
        string target = Path.Combine(folder, ModelConfigReader.FileName);
        AtomicFile.WriteAllBytes(target, Encoding.UTF8.GetBytes(json));
        return target;
    }

    private static void AddGemmaFields(SortedDictionary<string, Action<Utf8JsonWriter>> fields, ModelSpec spec, ModelFamily family)
    {
        fields["hidden_activation"] = w => w.WriteStringValue(family.Activation);
        fields["attention_bias"] = w => w.WriteBooleanValue(spec.AttentionBias);
        fields["query_pre_attn_scalar"] = w => ConfigJsonNumbers.WriteDouble(w, spec.QueryPreAttnScalar ?? spec.HeadDim);
        fields["attn_logit_softcapping"] = w => WriteOptional(w, spec.AttnLogitSoftcap);
        fields["final_logit_softcapping"] = w => WriteOptional(w, spec.FinalLogitSoftcap);
        fields["sliding_window"] = w => { if (spec.SlidingWindow is { } sw) w.WriteNumberValue(sw); else w.WriteNullValue(); };
        if (spec.SlidingWindow is not null)
        {
            fields["layer_types"] = w =>
            {
                w.WriteStartArray();
                for (int l = 0; l < spec.NumLayers; l++)
                    w.WriteStringValue(spec.WindowOf(l) is null ? "full_attention" : "sliding_attention");
                w.WriteEndArray();
            };
        }
        if (family == ModelFamily.Gemma3Text)
            fields["rope_local_base_freq"] = w => ConfigJsonNumbers.WriteDouble(w, spec.RopeLocalTheta ?? 10000.0);
    }

    private static void AddPhi3Fields(SortedDictionary<string, Action<Utf8JsonWriter>> fields, ModelSpec spec)
    {
        fields["sliding_window"] = w => { if (spec.SlidingWindow is { } sw) w.WriteNumberValue(sw); else w.WriteNullValue(); };
        // Phi-3 keeps the pre-extension context at the top level, where longrope reads it.
        int original = spec.RopeScaling?.Type == RopeScalingJson.LongRope ? spec.RopeScaling.OriginalMaxPositionEmbeddings : spec.MaxPositionEmbeddings;
        fields["original_max_position_embeddings"] = w => w.WriteNumberValue(original);
        fields["embd_pdrop"] = w => ConfigJsonNumbers.WriteDouble(w, 0.0);
        fields["resid_pdrop"] = w => ConfigJsonNumbers.WriteDouble(w, 0.0);
        if (spec.PartialRotaryFactor != 1.0)
            fields["partial_rotary_factor"] = w => ConfigJsonNumbers.WriteDouble(w, spec.PartialRotaryFactor);
    }

    private static void WriteOptional(Utf8JsonWriter w, double? value)
    {
        if (value is { } v) ConfigJsonNumbers.WriteDouble(w, v);
        else w.WriteNullValue();
    }

    /// <summary>
    /// The spec with <see cref="ModelSpec.GlobalLayerEvery"/> in the form the reader derives from <c>layer_types</c>: several
    /// patterns describe the same layers when the model is shorter than the pattern (a 4-layer Gemma 3 is all local).
    /// </summary>
    private static ModelSpec Canonical(ModelSpec spec)
    {
        if (spec.SlidingWindow is null || spec.GlobalLayerEvery == 0)
            return spec;
        var local = Enumerable.Range(0, spec.NumLayers).Select(l => spec.WindowOf(l) is not null).ToArray();
        if (local.All(x => x))
            return spec with { GlobalLayerEvery = 0 };
        if (local.All(x => !x))
            return spec with { SlidingWindow = null, GlobalLayerEvery = 0 };
        for (int every = 2; every <= spec.NumLayers; every++)
            if (Enumerable.Range(0, spec.NumLayers).All(i => local[i] == ((i + 1) % every != 0)))
                return spec with { GlobalLayerEvery = every };
        return spec;
    }

    private static void CheckRoundTrip(ModelSpec spec, string json)
    {
        ModelSpec back;
        try
        {
            back = ModelConfigReader.Parse(json, $"config.json written for {spec.ModelType}");
        }
        catch (ModelConfigException e)
        {
            throw new ArgumentException($"the spec is not a valid model: {e.Message}", nameof(spec), e);
        }
        if (Canonical(back) != Canonical(spec))
            throw new ArgumentException(
                $"the spec cannot be expressed in a {spec.ModelType} config.json: it reads back as {back}, not {spec}", nameof(spec));
    }
}
