using QuantPeft.Formats.HuggingFace;
using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.Utils;
using static TorchSharp.torch;
using QuantPeft.Quant.Torch;

namespace QuantPeft.Trainers.Model;

/// <summary>
/// One pre-norm decoder block (<c>model.layers.N</c>):
/// h = x + attn(norm₁(x)); out = h + mlp(norm₂(h)); Gemma adds a norm after each sub-block:
/// h = x + norm₂(attn(norm₁(x))); out = h + norm₄(mlp(norm₃(h))).
/// </summary>
public sealed class DecoderLayer : nn.Module<Tensor, Tensor, Tensor, Tensor>
{
    [ComponentName(Name = "self_attn")] private readonly SelfAttention _selfAttn;
    [ComponentName(Name = "mlp")] private readonly Mlp _mlp;
    [ComponentName(Name = "input_layernorm")] private readonly RmsNorm _inputNorm;
    [ComponentName(Name = "post_attention_layernorm")] private readonly RmsNorm _postAttentionNorm;
    [ComponentName(Name = "pre_feedforward_layernorm")] private readonly RmsNorm? _preFeedforwardNorm;
    [ComponentName(Name = "post_feedforward_layernorm")] private readonly RmsNorm? _postFeedforwardNorm;

    /// <summary>Creates block <paramref name="index"/> of <paramref name="spec"/>, with the spec's widths unless <paramref name="dims"/> narrows them.</summary>
    public DecoderLayer(QuantPeft.Formats.HuggingFace.ModelSpec spec, int index, ScalarType dtype, Device? device, LinearFactory linear,
        LayerDims? dims = null)
        : base(nameof(DecoderLayer))
    {
        string prefix = $"model.layers.{index}";
        Index = index;
        dims ??= LayerDims.Of(spec);
        _selfAttn = new SelfAttention($"{prefix}.self_attn", spec.HiddenSize, dims.NumHeads, dims.NumKvHeads, spec.HeadDim,
            spec.AttentionBias, spec.OutputProjectionBias, linear, LayerAttention.Of(spec, index), dtype, device, spec.FusedProjections);
        bool gemma = spec.GemmaStyle;
        _mlp = new Mlp($"{prefix}.mlp", spec.HiddenSize, dims.IntermediateSize, linear, tanhGelu: gemma, fusedGateUp: spec.FusedProjections);
        _inputNorm = new RmsNorm(spec.HiddenSize, spec.RmsNormEps, dtype, device, gemma);
        _postAttentionNorm = new RmsNorm(spec.HiddenSize, spec.RmsNormEps, dtype, device, gemma);
        if (gemma)
        {
            _preFeedforwardNorm = new RmsNorm(spec.HiddenSize, spec.RmsNormEps, dtype, device, unitOffset: true);
            _postFeedforwardNorm = new RmsNorm(spec.HiddenSize, spec.RmsNormEps, dtype, device, unitOffset: true);
        }
        RegisterComponents();
    }

    /// <summary>Position of the block in the stack.</summary>
    public int Index { get; }

    /// <summary>The attention sub-block.</summary>
    public SelfAttention SelfAttn => _selfAttn;

    /// <summary>The MLP sub-block.</summary>
    public Mlp Mlp => _mlp;

    /// <summary>
    /// When set (by <see cref="DecoderStack.HeapRetentionLimit"/>), a <see cref="HeapRetentionGuard"/> also stands between
    /// the attention and MLP sub-blocks. At a few thousand tokens one sub-block's short-lived tensors (bf16 projection
    /// outputs and casts of 8–25 MiB each) leave more freed pages than the limit, and under checkpointing a block's
    /// recomputation and its backward run with no block boundary between them; a guard at the block's edges alone let
    /// the resident set reach 330 MiB above the live tensors inside one recomputed block (TinyLlama widths, 4 × 512 tokens).
    /// </summary>
    public long? HeapRetentionLimit { get; set; }

    /// <summary>x (B, T, H), cos/sin (T, D) → (B, T, H).</summary>
    public override Tensor forward(Tensor x, Tensor cos, Tensor sin)
    {
        using var scope = NewDisposeScope();
        if (_preFeedforwardNorm is not null && _postFeedforwardNorm is not null)
        {
            // Gemma: each sub-block's output is normalised again before it joins the residual stream.
            var attended = Guard(x.Add(_postAttentionNorm.call(_selfAttn.call(_inputNorm.call(x), cos, sin))));
            var fed = attended.Add(_postFeedforwardNorm.call(_mlp.call(_preFeedforwardNorm.call(attended))));
            return fed.MoveToOuterDisposeScope();
        }
        var h = Guard(x.Add(_selfAttn.call(_inputNorm.call(x), cos, sin)));
        var output = h.Add(_mlp.call(_postAttentionNorm.call(h)));
        return output.MoveToOuterDisposeScope();
    }

    private Tensor Guard(Tensor h) => HeapRetentionLimit is { } limit ? HeapRetentionGuard.Apply(h, limit) : h;
}
