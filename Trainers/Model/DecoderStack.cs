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
    private readonly float[]? _longInverseFrequencies;
    private readonly int _longContextFrom;
    private readonly double _cosSinScale;
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
        // longrope: the long factors take over once a sequence is longer than the original context; cos/sin carry its attention factor.
        if (spec.RopeScaling is { Type: "longrope" } longRope)
        {
            _longInverseFrequencies = RotaryEmbedding.InverseFrequencies(spec, longContext: true);
            _longContextFrom = longRope.OriginalMaxPositionEmbeddings;
        }
        _cosSinScale = spec.RopeScaling?.CosSinScale ?? 1.0;
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
    /// When set (CPU training and its evaluations), the freed bytes the C heap may keep resident between decoder blocks
    /// before they are returned to the kernel (<see cref="HeapRetentionGuard"/>); null leaves the heap alone.
    /// </summary>
    public long? HeapRetentionLimit
    {
        get => _heapRetentionLimit;
        set
        {
            _heapRetentionLimit = value;
            foreach (var layer in _layerList) layer.HeapRetentionLimit = value;   // and between each block's sub-blocks
        }
    }

    private long? _heapRetentionLimit;

    /// <summary>input ids (B, T) int64 → final-norm hidden states (B, T, H).</summary>
    /// <exception cref="ModelException">T exceeds <c>max_position_embeddings</c>.</exception>
    public override Tensor forward(Tensor inputIds) => Run(inputIds, null);

    /// <summary>
    /// input ids (B, T) int64 of rows that pack several examples → final-norm hidden states (B, T, H), each example rotated
    /// from position 0 and attending only within itself (<paramref name="segments"/>).
    /// </summary>
    /// <exception cref="ModelException">T exceeds <c>max_position_embeddings</c>.</exception>
    public Tensor Forward(Tensor inputIds, PackedSegments segments)
    {
        foreach (var layer in _layerList) layer.SelfAttn.Segments = segments;
        try
        {
            return Run(inputIds, segments);
        }
        finally
        {
            foreach (var layer in _layerList) layer.SelfAttn.Segments = null;
        }
    }

    private Tensor Run(Tensor inputIds, PackedSegments? segments)
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
        var (cos, sin) = Rotary(FrequenciesFor(seqLen), seqLen, h, segments, _cosSinScale);
        var (localCos, localSin) = _localInverseFrequencies is null ? (cos, sin) : Rotary(_localInverseFrequencies, seqLen, h, segments, 1.0);
        bool checkpoint = GradientCheckpointing && is_grad_enabled();
        foreach (var layer in _layerList)
        {
            var (c, s) = _usesLocalRope[layer.Index] ? (localCos, localSin) : (cos, sin);
            // Each custom autograd node (the checkpointed block, the heap guard) also gets an uninitialised tensor shaped
            // like its output from TorchSharp, kept to zero-fill a gradient that never arrives here; in the stack's scope
            // those lived until the forward ended: 2 × 22 × 8 MiB in use on TinyLlama at 2,048 tokens, on top of the
            // checkpointed inputs. A scope per block frees them as soon as the block has run.
            using var blockScope = NewDisposeScope();
            var next = checkpoint ? BlockCheckpoint.Run(layer, h, c, s) : layer.call(h, c, s);
            if (HeapRetentionLimit is { } limit) next = HeapRetentionGuard.Apply(next, limit);
            h = next.MoveToOuterDisposeScope();
        }
        return _norm.call(h).MoveToOuterDisposeScope();
    }

    // (T, D) tables for rows that are one sequence; (B, 1, T, D) from the per-row position ids of packed rows.
    private static (Tensor Cos, Tensor Sin) Rotary(float[] inverseFrequencies, long seqLen, Tensor h, PackedSegments? segments, double scale) =>
        segments is null
            ? RotaryEmbedding.CosSin(inverseFrequencies, seqLen, h.dtype, h.device, scale)
            : RotaryEmbedding.CosSin(inverseFrequencies, segments.PositionIds, h.dtype, scale);

    /// <summary>The rotary frequencies for a sequence of <paramref name="length"/> tokens: longrope's long ones past the original context.</summary>
    private float[] FrequenciesFor(long length) =>
        _longInverseFrequencies is not null && length > _longContextFrom ? _longInverseFrequencies : _inverseFrequencies;

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
        // transformers restarts a longrope cache whose tokens would straddle the switch; the cached keys cannot be re-rotated here.
        if (_longInverseFrequencies is not null && past > 0 && past <= _longContextFrom && past + seqLen > _longContextFrom)
            throw new ModelException(
                $"input_ids: {past} cached + {seqLen} new tokens cross longrope's original_max_position_embeddings {_longContextFrom}; run the whole sequence uncached");
        var (cos, sin) = RotaryEmbedding.CosSin(FrequenciesFor(past + seqLen), past + seqLen, h.dtype, h.device, _cosSinScale);
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
