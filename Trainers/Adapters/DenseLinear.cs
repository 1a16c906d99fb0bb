using TorchSharp;
using TorchSharp.Utils;
using TorchSharp.Modules;
using static TorchSharp.torch;
using QuantPeft.Quant.Torch;

namespace QuantPeft.Trainers.Adapters;

/// <summary>A frozen dense projection (bf16 by default) that adapters can wrap and merge into.</summary>
public sealed class DenseLinear : nn.Module<Tensor, Tensor>, IBaseLinear
{
    [ComponentName(Name = "weight")]
    private readonly Parameter _weight;

    [ComponentName(Name = "bias")]
    private readonly Parameter? _bias;

    /// <summary>Wraps <paramref name="weight"/> [out, in] (and <paramref name="bias"/> [out]) as frozen parameters; takes ownership.</summary>
    public DenseLinear(Tensor weight, Tensor? bias = null) : base(nameof(DenseLinear))
    {
        if (weight.dim() != 2) throw new AdapterException($"a linear weight must be 2-D, got shape [{string.Join(", ", weight.shape)}]");
        if (bias is not null && (bias.dim() != 1 || bias.shape[0] != weight.shape[0]))
            throw new AdapterException($"bias shape [{string.Join(", ", bias.shape)}] does not match weight rows {weight.shape[0]}");
        _weight = new Parameter(weight, requires_grad: false);
        _bias = bias is null ? null : new Parameter(bias, requires_grad: false);
        RegisterComponents();
    }

    /// <inheritdoc />
    public long InFeatures => _weight.shape[1];

    /// <inheritdoc />
    public long OutFeatures => _weight.shape[0];

    /// <inheritdoc />
    public Device Device => _weight.device;

    /// <inheritdoc />
    public Tensor? Bias => _bias;

    /// <summary>The frozen weight parameter [out, in].</summary>
    public Tensor Weight => _weight;

    /// <inheritdoc />
    public bool SupportsMerge => true;

    /// <inheritdoc />
    public override Tensor forward(Tensor x) => nn.functional.linear(x, _weight, _bias);

    /// <inheritdoc />
    public Tensor ForwardNoBias(Tensor x) => nn.functional.linear(x, _weight);

    /// <inheritdoc />
    public Tensor DenseWeight(ScalarType dtype) => _weight.detach().to(dtype, copy: true);

    /// <inheritdoc />
    public void CopyRowsInto(long start, Tensor destination)
    {
        using var rows = _weight.detach().narrow(0, start, destination.shape[0]);
        destination.copy_(rows);
    }

    /// <inheritdoc />
    public Tensor DenseRows(long start, long count, ScalarType dtype) => _weight.detach().narrow(0, start, count).to(dtype, copy: true);

    /// <inheritdoc />
    public void AddToWeight(Tensor delta)
    {
        using var noGrad = torch.no_grad();
        using var cast = delta.to(ScalarType.Float32, _weight.device);
        using var sum = _weight.to(ScalarType.Float32).AddInPlace(cast);
        _weight.copy_(sum);
    }
}
