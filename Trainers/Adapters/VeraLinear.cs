using TorchSharp;
using TorchSharp.Utils;
using TorchSharp.Modules;
using static TorchSharp.torch;
using QuantPeft.Quant.Torch;

namespace QuantPeft.Trainers.Adapters;

/// <summary>
/// VeRA: <c>y = base(x) + λ_b ⊙ (B (λ_d ⊙ (A dropout(x))))</c> with A, B the shared frozen random matrices
/// sliced to this layer and only λ_d [r] (init 0.1) and λ_b [out] (init 0) trained: r + d_out values per layer.
/// </summary>
public sealed class VeraLinear : AdapterLayer, IAdapterLayer
{
    [ComponentName(Name = "base_layer")]
    private readonly nn.Module<Tensor, Tensor> _base;

    [ComponentName(Name = "vera_lambda_d")]
    private readonly Parameter _lambdaD;

    [ComponentName(Name = "vera_lambda_b")]
    private readonly Parameter _lambdaB;

    [ComponentName(Name = "vera_dropout")]
    private readonly Dropout _dropout;

    private readonly AdapterLayerState _state;
    private readonly VeraSharedMatrices _shared;

    /// <summary>PEFT's default initial λ_d (<c>d_initial</c>).</summary>
    public const double DefaultInitialD = 0.1;

    /// <summary>Wraps <paramref name="baseLayer"/>; <paramref name="shared"/> is not owned (many layers share it).</summary>
    public VeraLinear(nn.Module<Tensor, Tensor> baseLayer, VeraSharedMatrices shared, double dropout = 0.0, double initialD = DefaultInitialD)
        : base(nameof(VeraLinear))
    {
        _state = new AdapterLayerState(baseLayer, "VeRA", dropout: dropout);
        if (_state.Base.InFeatures > shared.A.shape[1] || _state.Base.OutFeatures > shared.B.shape[0])
            throw new AdapterException($"VeRA shared matrices ({shared.B.shape[0]}×{shared.A.shape[1]}) are smaller than the {_state.Base.OutFeatures}×{_state.Base.InFeatures} layer");
        _base = baseLayer;
        _shared = shared;
        Device device = _state.Base.Device;
        using (Scalar d = initialD.ToScalar())
            _lambdaD = new Parameter(torch.full(shared.Rank, d, dtype: shared.A.dtype, device: device), requires_grad: true);
        _lambdaB = new Parameter(torch.zeros(_state.Base.OutFeatures, dtype: shared.A.dtype, device: device), requires_grad: true);
        _dropout = nn.Dropout(dropout);
        RegisterComponents();
    }

    /// <summary>λ_d [r].</summary>
    public Tensor LambdaD => _lambdaD;

    /// <summary>λ_b [out].</summary>
    public Tensor LambdaB => _lambdaB;

    private protected override AdapterLayerState State => _state;

    /// <inheritdoc />
    public long TrainableParameterCount => _lambdaD.numel() + _lambdaB.numel();

    /// <inheritdoc />
    public override Tensor forward(Tensor x)
    {
        if (_state.Bypassed) return _base.forward(x);
        using var scope = torch.NewDisposeScope();
        Tensor a = _shared.A.narrow(1, 0, _state.Base.InFeatures);   // (r, in)
        Tensor b = _shared.B.narrow(0, 0, _state.Base.OutFeatures);  // (out, r)
        Tensor h = nn.functional.linear(_dropout.forward(x).to(a.dtype), a).mul(_lambdaD);
        Tensor y = nn.functional.linear(h, b).mul(_lambdaB);
        return _base.forward(x).Add(y.to(x.dtype)).MoveToOuterDisposeScope();
    }

    /// <summary>diag(λ_b) B diag(λ_d) A [out, in] in f32 (f64 for f64 shared matrices).</summary>
    public Tensor Delta() => SlicedDelta(_shared.A, _shared.B, _lambdaD, _lambdaB, _state.Base.InFeatures, _state.Base.OutFeatures);

    /// <summary>
    /// PEFT's VeRA update for one layer: diag(λ_b) B[:out, :] diag(λ_d) A[:, :in] [out, in], the shared A [r, ≥ in] and
    /// B [≥ out, r] sliced to the layer, in f32 (f64 when A is f64). The export merges saved adapters with it too.
    /// </summary>
    public static Tensor SlicedDelta(Tensor a, Tensor b, Tensor lambdaD, Tensor lambdaB, long inFeatures, long outFeatures)
    {
        using var scope = torch.NewDisposeScope();
        ScalarType t = a.dtype == ScalarType.Float64 ? ScalarType.Float64 : ScalarType.Float32;
        Tensor sa = a.narrow(1, 0, inFeatures).to(t);
        Tensor sb = b.narrow(0, 0, outFeatures).to(t);
        Tensor d = sb.mul(lambdaD.detach().to(t).unsqueeze(0)).matmul(sa).mul(lambdaB.detach().to(t).unsqueeze(1));
        return d.MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    public void Merge() => _state.Merge(() =>
    {
        using var d = Delta();
        _state.Base.AddToWeight(d);
    }, "cannot merge a VeRA adapter into a quantized base");

    /// <inheritdoc />
    public void Unmerge() => _state.Unmerge(() =>
    {
        using var d = Delta().neg_();
        _state.Base.AddToWeight(d);
    });

    /// <inheritdoc />
    public IReadOnlyDictionary<string, Tensor> AdapterTensors() => new Dictionary<string, Tensor>
    {
        ["vera_lambda_d"] = _lambdaD, ["vera_lambda_b"] = _lambdaB,
    };

    /// <inheritdoc />
    public void LoadAdapterTensors(IReadOnlyDictionary<string, Tensor> tensors) =>
        AdapterTensorChecks.CopyInto(tensors, AdapterTensors(), "VeRA layer");
}
