using QuantPeft.Formats.HuggingFace;
using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Model;

/// <summary>
/// A decoder-only causal language model (llama, mistral, qwen2, qwen3, gemma2, gemma3_text, phi3), built from a
/// <see cref="ModelSpec"/> with module and parameter names equal to Hugging Face state-dict keys
/// (<c>model.layers.0.self_attn.q_proj.weight</c>, …, <c>lm_head.weight</c>). With tied embeddings
/// there is no <c>lm_head</c> module: the head reads the embedding matrix, so it is stored and
/// trained once.
/// </summary>
public sealed class CausalLm : nn.Module<Tensor, Tensor>
{
    private static readonly string[] SupportedTypes = ["llama", "mistral", "qwen2", "qwen3", "gemma2", "gemma3_text", "phi3"];

    [ComponentName(Name = "model")] private readonly DecoderStack _model;
    [ComponentName(Name = "lm_head")] private readonly Linear? _lmHead;
    private readonly IStructuredPruning? _pruning;
    private readonly LayerDims[] _dims;

    /// <summary>Builds the model with freshly initialised weights; load a checkpoint with <see cref="LoadWeights"/>.</summary>
    /// <exception cref="ModelException">The spec names an unsupported family, head layout or rope scaling.</exception>
    public CausalLm(ModelSpec spec, DecoderOptions? options = null) : base(nameof(CausalLm))
    {
        Validate(spec);
        options ??= new DecoderOptions();
        Spec = spec;
        ComputeDType = options.ComputeDType;
        var linear = options.LinearFactory ?? LinearFactories.Plain(options.ComputeDType, options.Device);
        _pruning = options.Pruning;
        _dims = Enumerable.Range(0, spec.NumLayers).Select(l => _pruning?.Dims(l) ?? LayerDims.Of(spec)).ToArray();
        ValidateDims(_dims);
        _model = new DecoderStack(spec, options.ComputeDType, options.Device, linear, l => _dims[l])
        {
            GradientCheckpointing = options.GradientCheckpointing,
        };
        if (!spec.TieWordEmbeddings)
            _lmHead = nn.Linear(spec.HiddenSize, spec.VocabSize, hasBias: false, device: options.Device, dtype: options.ComputeDType);
        RegisterComponents();
        Attention = options.Attention;
    }

    /// <summary>The architecture this model was built from.</summary>
    public ModelSpec Spec { get; }

    /// <summary>Dtype of parameters and activations.</summary>
    public ScalarType ComputeDType { get; }

    /// <summary>The trunk (<c>model</c>): embedding, blocks, final norm.</summary>
    public DecoderStack Decoder => _model;

    /// <summary>The decoder blocks, in order.</summary>
    public IReadOnlyList<DecoderLayer> Layers => _model.Layers;

    /// <summary>The (V, H) matrix of the LM head: <c>lm_head.weight</c>, or the embedding matrix when tied.</summary>
    public Parameter LmHeadWeight => _lmHead?.weight ?? _model.EmbeddingWeight;

    /// <summary>Recompute each block in backward instead of keeping its activations; can change between steps.</summary>
    public bool GradientCheckpointing
    {
        get => _model.GradientCheckpointing;
        set => _model.GradientCheckpointing = value;
    }

    /// <summary>Attention kernel of every block; can change between steps.</summary>
    public AttentionImplementation Attention
    {
        get => _model.Layers.Count > 0 ? _model.Layers[0].SelfAttn.Implementation : AttentionImplementation.Fused;
        set
        {
            foreach (var layer in _model.Layers) layer.SelfAttn.Implementation = value;
        }
    }

    /// <summary>input ids (B, T) int64 → final-norm hidden states (B, T, H), for a chunked loss.</summary>
    public Tensor Hidden(Tensor inputIds) => _model.call(inputIds);

    /// <summary>
    /// As <see cref="Hidden(Tensor)"/>; with <paramref name="segments"/>, rows pack several examples and each is computed as
    /// if alone (position ids restart, attention stays within the example). Null: every row is one sequence.
    /// </summary>
    public Tensor Hidden(Tensor inputIds, PackedSegments? segments) => segments is null ? _model.call(inputIds) : _model.Forward(inputIds, segments);

    /// <summary>input ids (B, T) int64 → logits (B, T, V) in the compute dtype.</summary>
    /// <remarks>Materialises B·T·V logits; training should use <see cref="Hidden(Tensor)"/> with <see cref="QuantPeft.Trainers.Loss.ChunkedCrossEntropy"/>.</remarks>
    public override Tensor forward(Tensor inputIds)
    {
        using var scope = NewDisposeScope();
        var hidden = _model.call(inputIds);
        var logits = nn.functional.linear(hidden, LmHeadWeight);
        if (Spec.FinalLogitSoftcap is { } cap)
            logits = Softcap.Apply(logits, cap);
        return logits.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Logits (B, T, V) of the tokens that follow the <paramref name="cache"/>d ones, adding theirs to the cache: the same
    /// logits <see cref="forward"/> gives for those positions of the whole sequence, computing only the new tokens.
    /// </summary>
    public Tensor Forward(Tensor inputIds, KvCache cache)
    {
        using var scope = NewDisposeScope();
        var hidden = _model.Forward(inputIds, cache);
        var logits = nn.functional.linear(hidden, LmHeadWeight);
        if (Spec.FinalLogitSoftcap is { } cap)
            logits = Softcap.Apply(logits, cap);
        return logits.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Copies every tensor of <paramref name="source"/> into the model; see <see cref="WeightLoader.Load"/>. A model built
    /// with <see cref="DecoderOptions.Pruning"/> reads the source through it, so each tensor arrives already narrowed.
    /// </summary>
    public void LoadWeights(ITensorSource source) => WeightLoader.Load(this, _pruning?.Apply(source) ?? source);

    /// <summary>The widths of block <paramref name="layer"/>: the spec's, or narrower when the model was built pruned.</summary>
    public LayerDims DimsOf(int layer) => _dims[layer];

    /// <summary>
    /// The checkpoint tensors this model loads: <see cref="ModelSpec.Tensors()"/>, with the attention and MLP shapes of
    /// each block taken from <see cref="DimsOf"/>.
    /// </summary>
    public IEnumerable<TensorSpec> ExpectedTensors() => Spec.Tensors(l => _dims[l]);

    private static void ValidateDims(LayerDims[] dims)
    {
        for (int l = 0; l < dims.Length; l++)
        {
            var d = dims[l];
            if (d.NumKvHeads < 1 || d.NumHeads < 1 || d.NumHeads % d.NumKvHeads != 0 || d.IntermediateSize < 1)
                throw new ModelException(
                    $"layer {l}: pruned widths must keep at least one key/value head, a whole number of query heads per key/value head and one MLP channel; found {d.NumHeads} query heads, {d.NumKvHeads} key/value heads, {d.IntermediateSize} channels");
        }
    }

    private static void Validate(ModelSpec spec)
    {
        if (!SupportedTypes.Contains(spec.ModelType))
            throw new ModelException($"model_type: expected one of {string.Join(", ", SupportedTypes)}; found '{spec.ModelType}'");
        if (spec.NumKvHeads <= 0 || spec.NumHeads % spec.NumKvHeads != 0)
            throw new ModelException(
                $"num_key_value_heads: must divide num_attention_heads ({spec.NumHeads}); found {spec.NumKvHeads}");
        if (spec.HeadDimOverride == 0 && spec.HiddenSize % spec.NumHeads != 0)
            throw new ModelException(
                $"hidden_size: must be a multiple of num_attention_heads ({spec.NumHeads}) when head_dim is absent; found {spec.HiddenSize}");
        RotaryEmbedding.InverseFrequencies(spec);   // rejects odd head_dim and unknown rope types now, not at first forward
    }
}
