namespace QuantPeft.Formats.HuggingFace;

/// <summary>
/// What a <c>model_type</c> implies beyond its config.json: the defaults transformers fills in for
/// absent fields (from <c>configuration_llama.py</c>, <c>configuration_mistral.py</c>,
/// <c>configuration_qwen2.py</c>) and the bias layout its modeling code hard-wires.
/// </summary>
/// <param name="ModelType">The <c>model_type</c> string.</param>
/// <param name="Architecture">The <c>architectures</c> entry transformers writes for a causal LM.</param>
/// <param name="DefaultKvHeads">
/// <c>num_key_value_heads</c> when the key is absent; null means "equal to <c>num_attention_heads</c>".
/// Mistral's and Qwen2's constructors default it to a number (8 and 32), and only an explicit JSON null
/// falls back to the head count; Llama's defaults it to the head count either way.
/// </param>
/// <param name="DefaultMaxPositionEmbeddings"><c>max_position_embeddings</c> when absent.</param>
/// <param name="QkvBias">Whether q/k/v always carry biases whatever <c>attention_bias</c> says (qwen2).</param>
/// <param name="ReadsAttentionBias">Whether <c>attention_bias</c> is honoured (llama: it adds biases to q, k, v and o).</param>
/// <param name="DefaultSlidingWindow"><c>sliding_window</c> when absent (mistral only; null means full attention).</param>
internal sealed record ModelFamily(
    string ModelType,
    string Architecture,
    int? DefaultKvHeads,
    int DefaultMaxPositionEmbeddings,
    bool QkvBias,
    bool ReadsAttentionBias,
    int? DefaultSlidingWindow)
{
    /// <summary><c>rms_norm_eps</c> when absent: 1e-6 in all three configuration classes.</summary>
    public const double DefaultRmsNormEps = 1e-6;

    /// <summary><c>rope_theta</c> when absent (the original RoPE base).</summary>
    public const double DefaultRopeTheta = 10000.0;

    public static readonly ModelFamily Llama = new("llama", "LlamaForCausalLM", null, 2048, false, true, null);
    public static readonly ModelFamily Mistral = new("mistral", "MistralForCausalLM", 8, 4096 * 32, false, false, 4096);
    public static readonly ModelFamily Qwen2 = new("qwen2", "Qwen2ForCausalLM", 32, 32768, true, false, null);

    public static IReadOnlyList<ModelFamily> All { get; } = [Llama, Mistral, Qwen2];

    public static ModelFamily? Find(string modelType) => All.FirstOrDefault(f => f.ModelType == modelType);

    public static string SupportedList => string.Join(", ", All.Select(f => f.ModelType));
}
