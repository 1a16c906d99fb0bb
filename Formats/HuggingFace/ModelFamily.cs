namespace QuantPeft.Formats.HuggingFace;

/// <summary>
/// What a <c>model_type</c> implies beyond its config.json: the defaults transformers fills in for
/// absent fields (from <c>configuration_llama.py</c>, <c>configuration_mistral.py</c>, <c>configuration_qwen2.py</c>,
/// <c>configuration_qwen3.py</c>, <c>configuration_gemma2.py</c>, <c>configuration_gemma3.py</c>,
/// <c>configuration_phi3.py</c>) and the bias layout its
/// modeling code hard-wires.
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
/// <param name="DefaultHeadDim"><c>head_dim</c> when absent; null means <c>hidden_size / num_attention_heads</c> (qwen3 and gemma default to a number).</param>
/// <param name="DefaultTieWordEmbeddings"><c>tie_word_embeddings</c> when absent (true for gemma).</param>
/// <param name="FamilyRopeTheta"><c>rope_theta</c> when absent.</param>
/// <param name="Activation">The MLP activation its modeling code implements (<c>silu</c>, or gemma's <c>gelu_pytorch_tanh</c>).</param>
/// <param name="FamilyRmsNormEps"><c>rms_norm_eps</c> when absent (1e-6, except phi3's 1e-5).</param>
internal sealed record ModelFamily(
    string ModelType,
    string Architecture,
    int? DefaultKvHeads,
    int DefaultMaxPositionEmbeddings,
    bool QkvBias,
    bool ReadsAttentionBias,
    int? DefaultSlidingWindow,
    int? DefaultHeadDim = null,
    bool DefaultTieWordEmbeddings = false,
    double FamilyRopeTheta = 10000.0,
    string Activation = "silu",
    double FamilyRmsNormEps = ModelFamily.DefaultRmsNormEps)
{
    /// <summary><c>rms_norm_eps</c> when absent: 1e-6 in every supported configuration class but phi3's.</summary>
    public const double DefaultRmsNormEps = 1e-6;

    /// <summary><c>rope_theta</c> when absent (the original RoPE base).</summary>
    public const double DefaultRopeTheta = 10000.0;

    public static readonly ModelFamily Llama = new("llama", "LlamaForCausalLM", null, 2048, false, true, null);
    public static readonly ModelFamily Mistral = new("mistral", "MistralForCausalLM", 8, 4096 * 32, false, false, 4096);
    public static readonly ModelFamily Qwen2 = new("qwen2", "Qwen2ForCausalLM", 32, 32768, true, false, null);

    public static readonly ModelFamily Qwen3 = new("qwen3", "Qwen3ForCausalLM", 32, 32768, false, true, null, DefaultHeadDim: 128);
    public static readonly ModelFamily Gemma2 = new("gemma2", "Gemma2ForCausalLM", 4, 8192, false, true, 4096,
        DefaultHeadDim: 256, DefaultTieWordEmbeddings: true, Activation: GeluTanh);
    public static readonly ModelFamily Gemma3Text = new("gemma3_text", "Gemma3ForCausalLM", 4, 131072, false, true, 4096,
        DefaultHeadDim: 256, DefaultTieWordEmbeddings: true, FamilyRopeTheta: 1_000_000.0, Activation: GeluTanh);

    /// <summary>
    /// Phi-3, Phi-3.5 and Phi-4 (<c>configuration_phi3.py</c>): llama's block with q/k/v fused into <c>qkv_proj</c> and
    /// gate/up into <c>gate_up_proj</c>, no biases, key/value heads defaulting to the head count, rms_norm_eps 1e-5.
    /// </summary>
    public static readonly ModelFamily Phi3 = new("phi3", "Phi3ForCausalLM", null, 4096, false, false, null, FamilyRmsNormEps: 1e-5);

    /// <summary>Gemma's activation name: GELU with the tanh approximation.</summary>
    public const string GeluTanh = "gelu_pytorch_tanh";

    public static IReadOnlyList<ModelFamily> All { get; } = [Llama, Mistral, Qwen2, Qwen3, Gemma2, Gemma3Text, Phi3];

    /// <summary>Whether the family has Gemma's block layout (see <see cref="ModelSpec.GemmaStyle"/>).</summary>
    public bool IsGemma => this == Gemma2 || this == Gemma3Text;

    public static ModelFamily? Find(string modelType) => All.FirstOrDefault(f => f.ModelType == modelType);

    public static string SupportedList => string.Join(", ", All.Select(f => f.ModelType));
}
