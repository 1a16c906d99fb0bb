using QuantPeft.Formats.HuggingFace;
using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Model;

/// <summary>
/// The decoder trunk (<c>model</c> in Hugging Face checkpoints): token embedding (× √hidden for Gemma), the
/// decoder blocks and the final RMSNorm. Produces the hidden states the LM head (or a chunked loss) consumes.
/// </summary>
public sealed class DecoderStack : nn.Module<Tensor, Tensor>
{
    [ComponentName(Name = "embed_tokens")] private readonly Embedding _embedTokens;
    [ComponentName(Name = "layers")] private readonly ModuleList<DecoderLayer> _layers;
    [ComponentName(Name = "norm")] private readonly RmsNorm _norm;
    private readonly DecoderLayer[] _layerList;
    private readonly float[] _inverseFrequencies;
    private readonly float[]? _localInverseFrequencies;
    private readonly bool[] _usesLocalRope;
    private readonly double? _embeddingScale;
    private readonly int _maxPositions;

    internal DecoderStack(ModelSpec spec, ScalarType dtype, Device? device, LinearFactory linear, Func<int, LayerDims> dims) : base(nameof(DecoderStack))
    {
        _embedTokens = nn.Embedding(spec.VocabSize, spec.HiddenSize, device: device, dtype: dtype);
        _layerList = Enumerable.Range(0, spec.NumLayers).Select(i => new DecoderLayer(spec, i, dtype, device, linear, dims(i))).ToArray();
        _layers = nn.ModuleList(_layerList);
        _norm = new RmsNorm(spec.HiddenSize, spec.RmsNormEps, dtype, device, spec.GemmaStyle);
        _inverseFrequencies = RotaryEmbedding.InverseFrequencies(spec);
        // Gemma 3's sliding-window layers rotate with their own base and without the global layers' scaling.
        if (spec.RopeLocalTheta is { } localTheta)
            _localInverseFrequencies = RotaryEmbedding.InverseFrequencies(spec with { RopeTheta = localTheta, RopeScaling = null });
        _usesLocalRope = Enumerable.Range(0, spec.NumLayers).Select(l => _localInverseFrequencies is not null && spec.WindowOf(l) is not null).ToArray();
        _embeddingScale = spec.GemmaStyle ? Math.Sqrt(spec.HiddenSize) : null;
        _maxPositions = spec.MaxPositionEmbeddings;
        RegisterComponents();
    }

    /// <summary>The decoder blocks, in order.</summary>
    public IReadOnlyList<DecoderLayer> Layers => _layerList;

    /// <summary>The token embedding matrix (V, H).</summary>
    public Parameter EmbeddingWeight => _embedTokens.weight!;

    /// <summary>Whether blocks run through <see cref="BlockCheckpoint"/> when gradients are recorded.</summary>
    public bool GradientCheckpointing { get; set; }

    /// <summary>
    /// When set (CPU training), the freed bytes the C heap may keep resident between decoder blocks before they are
    /// returned to the kernel (<see cref="HeapRetentionGuard"/>); null leaves the heap alone.
    /// </summary>
    public long? HeapRetentionLimit { get; set; }

    /// <summary>input ids (B, T) int64 → final-norm hidden states (B, T, H).</summary>
    /// <exception cref="ModelException">T exceeds <c>max_position_embeddings</c>.</exception>
    public override Tensor forward(Tensor inputIds)
    {
        long seqLen = inputIds.shape[^1];
        if (seqLen > _maxPositions)
            throw new ModelException(
                $"input_ids: sequence length {seqLen} exceeds max_position_embeddings {_maxPositions}");
        using var scope = NewDisposeScope();
        var h = _embedTokens.call(inputIds);                                   // (B, T, H)
        if (_embeddingScale is { } scale)
        {
            // √hidden rounded to the compute dtype first, as transformers multiplies by a tensor of that dtype.
            using var factor = tensor(new[] { (float)scale }, device: h.device).to_type(h.dtype);
            h = h.mul(factor);
        }
        var (cos, sin) = RotaryEmbedding.CosSin(_inverseFrequencies, seqLen, h.dtype, h.device);
        var (localCos, localSin) = _localInverseFrequencies is null
            ? (cos, sin)
            : RotaryEmbedding.CosSin(_localInverseFrequencies, seqLen, h.dtype, h.device);
        bool checkpoint = GradientCheckpointing && is_grad_enabled();
        foreach (var layer in _layerList)
        {
            var (c, s) = _usesLocalRope[layer.Index] ? (localCos, localSin) : (cos, sin);
            h = checkpoint ? BlockCheckpoint.Run(layer, h, c, s) : layer.call(h, c, s);
            if (HeapRetentionLimit is { } limit && is_grad_enabled()) h = HeapRetentionGuard.Apply(h, limit);
        }
        return _norm.call(h).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// input ids (B, T) int64 of the tokens after the <paramref name="cache"/>d ones → their final-norm hidden states
    /// (B, T, H); their keys and values join the cache.
    /// </summary>
    /// <exception cref="ModelException">The cached and new tokens exceed <c>max_position_embeddings</c>.</exception>
    public Tensor Forward(Tensor inputIds, KvCache cache)
    {
        long seqLen = inputIds.shape[^1], past = cache.Length;
        if (past + seqLen > _maxPositions)
            throw new ModelException($"input_ids: {past} cached + {seqLen} new tokens exceed max_position_embeddings {_maxPositions}");
        using var scope = NewDisposeScope();
        var h = _embedTokens.call(inputIds);                                   // (B, T, H)
        var (cos, sin) = RotaryEmbedding.CosSin(_inverseFrequencies, past + seqLen, h.dtype, h.device);
        (cos, sin) = (cos.narrow(0, past, seqLen), sin.narrow(0, past, seqLen));
        for (int i = 0; i < _layerList.Length; i++)
        {
            var attention = _layerList[i].SelfAttn;
            attention.Cache = cache[i];
            try
            {
                h = _layerList[i].call(h, cos, sin);
            }
            finally
            {
                attention.Cache = null;
            }
        }
        cache.Advance(seqLen);
        return _norm.call(h).MoveToOuterDisposeScope();
    }
}
