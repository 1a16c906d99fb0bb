namespace QuantPeft.Formats.HuggingFace;

/// <summary>
/// The architecture of a decoder-only model (llama, mistral, qwen2, qwen3, gemma2, gemma3_text, phi3), as the
/// numbers that decide every tensor shape. Everything the planner and the loader need is derived
/// from this one record, in one place (<see cref="Tensors()"/>), the way llm.c's
/// <c>fill_in_parameter_sizes</c> derives every size from its config.
/// </summary>
public sealed record ModelSpec
{
    /// <summary>Hugging Face <c>model_type</c>: <c>llama</c>, <c>mistral</c>, <c>qwen2</c>, <c>qwen3</c>, <c>gemma2</c>, <c>gemma3_text</c> or <c>phi3</c>.</summary>
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

    /// <summary>
    /// Phi-3's layout: one <c>qkv_proj</c> whose output rows are q, then k, then v, and one <c>gate_up_proj</c> whose
    /// first <see cref="IntermediateSize"/> rows are the gate and the rest the up projection. The checkpoint, the runtime and
    /// the adapters all keep these fused linears (PEFT targets them by these names).
    /// </summary>
    public bool FusedProjections => ModelType == "phi3";

    /// <summary><c>partial_rotary_factor</c>: the fraction of each head's dimensions that RoPE rotates (the first ones).</summary>
    public double PartialRotaryFactor { get; init; } = 1.0;

    /// <summary>How many leading dimensions of each head RoPE rotates: ⌊head_dim · <see cref="PartialRotaryFactor"/>⌋, as transformers truncates it.</summary>
    public int RotaryDim => (int)(HeadDim * PartialRotaryFactor);

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
    public IEnumerable<TensorSpec> Tensors() => Tensors(_ => LayerDims.Of(this));

    /// <summary>
    /// Every parameter tensor of this model with the head counts and MLP channels of each block given by
    /// <paramref name="dimsOf"/> (a structurally pruned model); the hidden size and head dimension stay the spec's.
    /// </summary>
    /// <param name="dimsOf">The widths of block <c>l</c>.</param>
    public IEnumerable<TensorSpec> Tensors(Func<int, LayerDims> dimsOf)
    {
        ArgumentNullException.ThrowIfNull(dimsOf);
        int h = HiddenSize;
        yield return new TensorSpec("model.embed_tokens.weight", [VocabSize, h], TensorRole.Embedding, -1);
        for (int l = 0; l < NumLayers; l++)
        {
            LayerDims dims = dimsOf(l);
            long q = (long)dims.NumHeads * HeadDim, kv = (long)dims.NumKvHeads * HeadDim, i = dims.IntermediateSize;
            string p = $"model.layers.{l}.";
            yield return new TensorSpec(p + "input_layernorm.weight", [h], TensorRole.Norm, l);
            if (FusedProjections)
            {
                yield return new TensorSpec(p + "self_attn.qkv_proj.weight", [q + 2L * kv, h], TensorRole.Linear, l);
                yield return new TensorSpec(p + "self_attn.o_proj.weight", [h, q], TensorRole.Linear, l);
                yield return new TensorSpec(p + "post_attention_layernorm.weight", [h], TensorRole.Norm, l);
                yield return new TensorSpec(p + "mlp.gate_up_proj.weight", [2L * i, h], TensorRole.Linear, l);
                yield return new TensorSpec(p + "mlp.down_proj.weight", [h, i], TensorRole.Linear, l);
                continue;
            }
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
/// <param name="Type"><c>llama3</c>, <c>linear</c>, <c>dynamic</c> or <c>longrope</c>.</param>
/// <param name="Factor"><c>factor</c> (longrope: <c>max_position_embeddings / original_max_position_embeddings</c> unless given).</param>
/// <param name="LowFreqFactor"><c>low_freq_factor</c> (llama3).</param>
/// <param name="HighFreqFactor"><c>high_freq_factor</c> (llama3).</param>
/// <param name="OriginalMaxPositionEmbeddings"><c>original_max_position_embeddings</c> (llama3, longrope).</param>
public sealed record RopeScaling(string Type, double Factor, double LowFreqFactor = 1.0, double HighFreqFactor = 4.0, int OriginalMaxPositionEmbeddings = 8192)
{
    /// <summary>longrope's <c>short_factor</c>: one divisor per rotated frequency, used while a sequence fits the original context.</summary>
    public IReadOnlyList<double>? ShortFactor { get; init; }

    /// <summary>longrope's <c>long_factor</c>: the divisors used once a sequence is longer than the original context.</summary>
    public IReadOnlyList<double>? LongFactor { get; init; }

    /// <summary>longrope's explicit <c>attention_factor</c>, or null for the paper's √(1 + ln s / ln original).</summary>
    public double? AttentionFactor { get; init; }

    /// <summary>
    /// The multiplier longrope applies to cos and sin: <see cref="AttentionFactor"/> when given, else
    /// √(1 + ln(factor) / ln(original_max_position_embeddings)) for a factor above 1, else 1 (transformers'
    /// <c>_compute_longrope_parameters</c>); 1 for every other type.
    /// </summary>
    public double CosSinScale => Type != "longrope" ? 1.0
        : AttentionFactor ?? (Factor <= 1.0 ? 1.0 : Math.Sqrt(1 + Math.Log(Factor) / Math.Log(OriginalMaxPositionEmbeddings)));

    /// <inheritdoc/>
    public bool Equals(RopeScaling? other) =>
        other is not null && Type == other.Type && Factor.Equals(other.Factor) && LowFreqFactor.Equals(other.LowFreqFactor)
        && HighFreqFactor.Equals(other.HighFreqFactor) && OriginalMaxPositionEmbeddings == other.OriginalMaxPositionEmbeddings
        && SameList(ShortFactor, other.ShortFactor) && SameList(LongFactor, other.LongFactor) && AttentionFactor == other.AttentionFactor;

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(Type, Factor, LowFreqFactor, HighFreqFactor, OriginalMaxPositionEmbeddings, ShortFactor?.Count, LongFactor?.Count);

    // The factor lists are compared by value: a config read back must equal the spec it was written from.
    private static bool SameList(IReadOnlyList<double>? a, IReadOnlyList<double>? b) =>
        a is null ? b is null : b is not null && a.SequenceEqual(b);
}

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
