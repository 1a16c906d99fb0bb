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

    /// <summary>Creates the norm with a unit scale of width <paramref name="hiddenSize"/>.</summary>
    public RmsNorm(long hiddenSize, double eps, ScalarType dtype, Device? device) : base(nameof(RmsNorm))
    {
        _eps = eps;
        _weight = nn.Parameter(ones(hiddenSize, dtype: dtype, device: device));
        RegisterComponents();
    }

    /// <summary>The learned scale (<c>weight</c>).</summary>
    public Parameter Weight => _weight;

    /// <summary>x (…, H) → weight · x / sqrt(mean(x²) + eps), same shape and dtype.</summary>
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var inputType = x.dtype;
        var xf = x.to_type(ScalarType.Float32);
        var variance = xf.Square().mean([-1L], keepdim: true);
        var normed = xf.mul(variance.AddInPlace(_eps).rsqrt_()).to_type(inputType);
        return _weight.mul(normed).MoveToOuterDisposeScope();
    }
}
