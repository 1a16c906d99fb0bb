using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.Utils;
using static TorchSharp.torch;
using QuantPeft.Quant.Torch;

namespace QuantPeft.Trainers.Model;

/// <summary>
/// One pre-norm decoder block (<c>model.layers.N</c>):
/// h = x + attn(norm₁(x)); out = h + mlp(norm₂(h)).
/// </summary>
public sealed class DecoderLayer : nn.Module<Tensor, Tensor, Tensor, Tensor>
{
    [ComponentName(Name = "self_attn")] private readonly SelfAttention _selfAttn;
    [ComponentName(Name = "mlp")] private readonly Mlp _mlp;
    [ComponentName(Name = "input_layernorm")] private readonly RmsNorm _inputNorm;
    [ComponentName(Name = "post_attention_layernorm")] private readonly RmsNorm _postAttentionNorm;

    /// <summary>Creates block <paramref name="index"/> of <paramref name="spec"/>, with the spec's widths unless <paramref name="dims"/> narrows them.</summary>
    public DecoderLayer(QuantPeft.Formats.HuggingFace.ModelSpec spec, int index, ScalarType dtype, Device? device, LinearFactory linear,
        LayerDims? dims = null)
        : base(nameof(DecoderLayer))
    {
        string prefix = $"model.layers.{index}";
        Index = index;
        dims ??= LayerDims.Of(spec);
        _selfAttn = new SelfAttention($"{prefix}.self_attn", spec.HiddenSize, dims.NumHeads, dims.NumKvHeads, spec.HeadDim,
            spec.AttentionBias, spec.OutputProjectionBias, linear);
        _mlp = new Mlp($"{prefix}.mlp", spec.HiddenSize, dims.IntermediateSize, linear);
        _inputNorm = new RmsNorm(spec.HiddenSize, spec.RmsNormEps, dtype, device);
        _postAttentionNorm = new RmsNorm(spec.HiddenSize, spec.RmsNormEps, dtype, device);
        RegisterComponents();
    }

    /// <summary>Position of the block in the stack.</summary>
    public int Index { get; }

    /// <summary>The attention sub-block.</summary>
    public SelfAttention SelfAttn => _selfAttn;

    /// <summary>The MLP sub-block.</summary>
    public Mlp Mlp => _mlp;

    /// <summary>x (B, T, H), cos/sin (T, D) → (B, T, H).</summary>
    public override Tensor forward(Tensor x, Tensor cos, Tensor sin)
    {
        using var scope = NewDisposeScope();
        var h = x.Add(_selfAttn.call(_inputNorm.call(x), cos, sin));
        var output = h.Add(_mlp.call(_postAttentionNorm.call(h)));
        return output.MoveToOuterDisposeScope();
    }
}
