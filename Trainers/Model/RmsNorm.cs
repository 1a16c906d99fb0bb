using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.Utils;
using static TorchSharp.torch;
using QuantPeft.Quant.Torch;

namespace QuantPeft.Trainers.Model;

/// <summary>
/// Root-mean-square layer norm as Hugging Face's <c>LlamaRMSNorm</c> computes it: the statistics in
/// float32 whatever the compute dtype, the normalised activations cast back to the input dtype, and
/// only then the multiplication by the learned scale (so bf16 rounding happens at the same points).
/// </summary>
public sealed class RmsNorm : nn.Module<Tensor, Tensor>
{
    [ComponentName(Name = "weight")]
    private readonly Parameter _weight;
    private readonly double _eps;
    private readonly bool _unitOffset;

    /// <summary>
    /// Creates the norm with a unit scale of width <paramref name="hiddenSize"/>. With <paramref name="unitOffset"/> it is
    /// Gemma's variant: the scale is (1 + weight) and, as in transformers' <c>GemmaRMSNorm</c>, the product is taken in
    /// float32 and only then cast back; the weight starts at 0.
    /// </summary>
    public RmsNorm(long hiddenSize, double eps, ScalarType dtype, Device? device, bool unitOffset = false) : base(nameof(RmsNorm))
    {
        _eps = eps;
        _unitOffset = unitOffset;
        _weight = nn.Parameter(unitOffset ? zeros(hiddenSize, dtype: dtype, device: device) : ones(hiddenSize, dtype: dtype, device: device));
        RegisterComponents();
    }

    /// <summary>Whether the scale is (1 + weight) (Gemma) rather than weight.</summary>
    public bool UnitOffset => _unitOffset;

    /// <summary>The learned scale (<c>weight</c>).</summary>
    public Parameter Weight => _weight;

    /// <summary>x (…, H) → weight · x / sqrt(mean(x²) + eps) (or (1 + weight) · …), same shape and dtype.</summary>
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var inputType = x.dtype;
        var xf = x.to_type(ScalarType.Float32);
        var variance = xf.Square().mean([-1L], keepdim: true);
        var normedF = xf.mul(variance.AddInPlace(_eps).rsqrt_());
        if (_unitOffset)
            return normedF.mul(_weight.to_type(ScalarType.Float32).Add(1.0)).to_type(inputType).MoveToOuterDisposeScope();
        var normed = normedF.to_type(inputType);
        return _weight.mul(normed).MoveToOuterDisposeScope();
    }
}
