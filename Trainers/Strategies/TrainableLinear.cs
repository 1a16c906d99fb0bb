using QuantPeft.Optimizers.InBackward;
using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Strategies;

/// <summary>
/// A dense projection whose weight (and bias) train, for full-parameter methods. Its parameters keep the
/// Hugging Face names <c>weight</c> / <c>bias</c>, so the model's state-dict keys are those of the checkpoint.
/// </summary>
/// <remarks>
/// With <see cref="InBackward"/> set, the weight enters the forward through
/// <see cref="OptimizerInBackward.Use"/>: its update runs inside <c>backward()</c> the moment its gradient is
/// complete and that gradient is dropped at once, so only one projection's weight gradient exists at a time.
/// </remarks>
public sealed class TrainableLinear : nn.Module<Tensor, Tensor>
{
    [ComponentName(Name = "weight")]
    private readonly Parameter _weight;

    [ComponentName(Name = "bias")]
    private readonly Parameter? _bias;

    /// <summary>Trains <paramref name="weight"/> [out, in] (and <paramref name="bias"/> [out]); the parameters are shared, not copied.</summary>
    public TrainableLinear(Parameter weight, Parameter? bias) : base(nameof(TrainableLinear))
    {
        _weight = weight;
        _bias = bias;
        _weight.requires_grad_(true);
        _bias?.requires_grad_(true);
        RegisterComponents();
    }

    /// <summary>The weight [out, in].</summary>
    public Parameter Weight => _weight;

    /// <summary>The bias [out], or null.</summary>
    public Parameter? Bias => _bias;

    /// <summary>When set, the weight is updated during backward by this optimizer-in-backward (layer-wise mode).</summary>
    public OptimizerInBackward? InBackward { get; set; }

    /// <inheritdoc />
    public override Tensor forward(Tensor x)
    {
        // Outside autograd (eval, generation) there is no backward to update in, so the plain weight is used.
        var weight = InBackward is not null && is_grad_enabled() ? InBackward.Use(_weight) : _weight;
        return nn.functional.linear(x, weight, _bias);
    }
}
