namespace QuantPeft.Formats.HuggingFace;

/// <summary>
/// The architecture of a decoder-only model (llama, mistral, qwen2, qwen3, gemma2, gemma3_text), as the
/// numbers that decide every tensor shape. Everything the planner and the loader need is derived
/// from this one record, in one place (<see cref="Tensors"/>), the way llm.c's
/// <c>fill_in_parameter_sizes</c> derives every size from its config.
/// </summary>
public sealed record ModelSpec
{
    /// <summary>Hugging Face <c>model_type</c>: <c>llama</c>, <c>mistral</c>, <c>qwen2</c>, <c>qwen3</c>, <c>gemma2</c> or <c>gemma3_text</c>.</summary>
    public required string ModelType { get; init; }

    /// <summary><c>num_hidden_layers</c>.</summary>
    public required int NumLayers { get; init; }

    /// <summary><c>hidden_size</c>.</summary>
    public required int HiddenSize { get; init; }

    /// <summary><c>intermediate_size</c> of the SwiGLU MLP.</summary>
    public required int IntermediateSize { get; init; }

    /// <summary><c>num_attention_heads</c>.</summary>
    public required int NumHeads { get; init; }

    /// <summary><c>num_key_value_heads</c> (equal to <see cref="NumHeads"/> without grouped-query attention).</summary>
    public required int NumKvHeads { get; init; }

    /// <summary><c>vocab_size</c>.</summary>
    public required int VocabSize { get; init; }

    /// <summary><c>head_dim</c>; 0 means <c>hidden_size / num_attention_heads</c>.</summary>
    public int HeadDimOverride { get; init; }

    /// <summary>Per-head dimension.</summary>
    public int HeadDim => HeadDimOverride > 0 ? HeadDimOverride : HiddenSize / NumHeads;

    /// <summary><c>tie_word_embeddings</c>: the LM head reuses the embedding matrix.</summary>
    public bool TieWordEmbeddings { get; init; }

    /// <summary><c>rope_theta</c>.</summary>
    public double RopeTheta { get; init; } = 10000.0;

    /// <summary><c>rope_scaling</c>, or null.</summary>
    public RopeScaling? RopeScaling { get; init; }

    /// <summary><c>rms_norm_eps</c>.</summary>
    public double RmsNormEps { get; init; } = 1e-5;

    /// <summary>Whether q/k/v/o carry biases (<c>attention_bias</c>; qwen2 has q/k/v biases).</summary>
    public bool AttentionBias { get; init; }

    /// <summary>Whether the output projection carries a bias (llama with <c>attention_bias</c>; never mistral or qwen2).</summary>
    public bool OutputProjectionBias { get; init; }

    /// <summary>
    /// <c>sliding_window</c>: how many past tokens each query attends to, or null for full causal attention.
    /// Mistral v0.1 and Nemo-style configs set it for every layer, Gemma for the layers <see cref="GlobalLayerEvery"/> leaves
    /// local; it changes the attention mask, not any shape.
    /// </summary>
    public int? SlidingWindow { get; init; }

    /// <summary>
    /// Every how many layers one attends globally while the others use <see cref="SlidingWindow"/>: layer l is global when
    /// (l + 1) is a multiple of it (Gemma 2: 2, Gemma 3: 6, from <c>layer_types</c> or the family's default). 0 means every
    /// layer uses the window (Mistral).
    /// </summary>
    public int GlobalLayerEvery { get; init; }

    /// <summary>Whether attention has per-head RMSNorms <c>q_norm</c>/<c>k_norm</c> of length head_dim before RoPE (Qwen3, Gemma 3).</summary>
    public bool QkNorm { get; init; }

    /// <summary><c>query_pre_attn_scalar</c> (Gemma): attention scores are scaled by its −½ power instead of head_dim's.</summary>
    public double? QueryPreAttnScalar { get; init; }

    /// <summary><c>attn_logit_softcapping</c> (Gemma 2): scores become tanh(s / cap) · cap before the mask.</summary>
    public double? AttnLogitSoftcap { get; init; }

    /// <summary><c>final_logit_softcapping</c> (Gemma 2): logits become tanh(z / cap) · cap.</summary>
    public double? FinalLogitSoftcap { get; init; }

    /// <summary><c>rope_local_base_freq</c> (Gemma 3): the RoPE base of the sliding-window layers, which take no rope scaling.</summary>
    public double? RopeLocalTheta { get; init; }

    /// <summary>
    /// Gemma's block layout: embeddings × √hidden, RMSNorm × (1 + weight), four norms per layer (before and after attention
    /// and the MLP), and a GeGLU MLP with the tanh GELU.
    /// </summary>
    public bool GemmaStyle => ModelType is "gemma2" or "gemma3_text";

    /// <summary>The window layer <paramref name="layer"/> attends within, or null for full causal attention.</summary>
    public int? WindowOf(int layer) =>
        SlidingWindow is { } w && (GlobalLayerEvery == 0 || (layer + 1) % GlobalLayerEvery != 0) ? w : null;

    /// <summary>The softmax scale of attention scores: <c>query_pre_attn_scalar</c>^−½ when set, else head_dim^−½.</summary>
    public double AttentionScale => 1.0 / Math.Sqrt(QueryPreAttnScalar ?? HeadDim);

    /// <summary><c>max_position_embeddings</c>: the longest sequence the model supports.</summary>
    public int MaxPositionEmbeddings { get; init; } = 4096;

    /// <summary>Number of query heads that share one key/value head.</summary>
    public int GroupSize => NumHeads / NumKvHeads;

    /// <summary>Every parameter tensor in Hugging Face naming and <c>nn.Linear</c> layout, in checkpoint order.</summary>
    public IEnumerable<TensorSpec> Tensors()
    {
        int h = HiddenSize, q = NumHeads * HeadDim, kv = NumKvHeads * HeadDim, i = IntermediateSize;
        yield return new TensorSpec("model.embed_tokens.weight", [VocabSize, h], TensorRole.Embedding, -1);
        for (int l = 0; l < NumLayers; l++)
        {
            string p = $"model.layers.{l}.";
            yield return new TensorSpec(p + "input_layernorm.weight", [h], TensorRole.Norm, l);
            yield return new TensorSpec(p + "self_attn.q_proj.weight", [q, h], TensorRole.Linear, l);
            yield return new TensorSpec(p + "self_attn.k_proj.weight", [kv, h], TensorRole.Linear, l);
            yield return new TensorSpec(p + "self_attn.v_proj.weight", [kv, h], TensorRole.Linear, l);
            yield return new TensorSpec(p + "self_attn.o_proj.weight", [h, q], TensorRole.Linear, l);
            if (QkNorm)
            {
                yield return new TensorSpec(p + "self_attn.q_norm.weight", [HeadDim], TensorRole.Norm, l);
                yield return new TensorSpec(p + "self_attn.k_norm.weight", [HeadDim], TensorRole.Norm, l);
            }
            if (AttentionBias)
            {
                yield return new TensorSpec(p + "self_attn.q_proj.bias", [q], TensorRole.Bias, l);
                yield return new TensorSpec(p + "self_attn.k_proj.bias", [kv], TensorRole.Bias, l);
                yield return new TensorSpec(p + "self_attn.v_proj.bias", [kv], TensorRole.Bias, l);
            }
            if (OutputProjectionBias)
                yield return new TensorSpec(p + "self_attn.o_proj.bias", [h], TensorRole.Bias, l);
            yield return new TensorSpec(p + "post_attention_layernorm.weight", [h], TensorRole.Norm, l);
            if (GemmaStyle)
            {
                yield return new TensorSpec(p + "pre_feedforward_layernorm.weight", [h], TensorRole.Norm, l);
                yield return new TensorSpec(p + "post_feedforward_layernorm.weight", [h], TensorRole.Norm, l);
            }
            yield return new TensorSpec(p + "mlp.gate_proj.weight", [i, h], TensorRole.Linear, l);
            yield return new TensorSpec(p + "mlp.up_proj.weight", [i, h], TensorRole.Linear, l);
            yield return new TensorSpec(p + "mlp.down_proj.weight", [h, i], TensorRole.Linear, l);
        }
        yield return new TensorSpec("model.norm.weight", [h], TensorRole.Norm, -1);
        if (!TieWordEmbeddings)
            yield return new TensorSpec("lm_head.weight", [VocabSize, h], TensorRole.LmHead, -1);
    }

    /// <summary>Total number of parameters (tied embeddings counted once).</summary>
    public long ParameterCount => Tensors().Sum(t => t.ElementCount);
}

/// <summary>Rotary-embedding scaling (<c>rope_scaling</c> in config.json).</summary>
/// <param name="Type"><c>llama3</c>, <c>linear</c> or <c>dynamic</c>.</param>
/// <param name="Factor"><c>factor</c>.</param>
/// <param name="LowFreqFactor"><c>low_freq_factor</c> (llama3).</param>
/// <param name="HighFreqFactor"><c>high_freq_factor</c> (llama3).</param>
/// <param name="OriginalMaxPositionEmbeddings"><c>original_max_position_embeddings</c> (llama3).</param>
public sealed record RopeScaling(string Type, double Factor, double LowFreqFactor = 1.0, double HighFreqFactor = 4.0, int OriginalMaxPositionEmbeddings = 8192);

/// <summary>What a tensor does in the model; decides quantization and training policy.</summary>
public enum TensorRole
{
    /// <summary>Token embedding matrix.</summary>
    Embedding,
    /// <summary>A linear projection weight inside a decoder layer (q, k, v, o, gate, up, down).</summary>
    Linear,
    /// <summary>A bias vector of a linear projection.</summary>
    Bias,
    /// <summary>An RMSNorm weight.</summary>
    Norm,
    /// <summary>The output (LM head) projection.</summary>
    LmHead,
}

/// <summary>One parameter tensor of a model.</summary>
/// <param name="Name">Hugging Face state-dict name.</param>
/// <param name="Shape">Shape in <c>nn.Linear</c> layout (out × in for weights).</param>
/// <param name="Role">What the tensor does.</param>
/// <param name="Layer">Decoder layer index, or -1 outside the layers.</param>
public sealed record TensorSpec(string Name, long[] Shape, TensorRole Role, int Layer)
{
    /// <summary>Product of the shape.</summary>
    public long ElementCount => Shape.Aggregate(1L, (a, b) => a * b);
}
