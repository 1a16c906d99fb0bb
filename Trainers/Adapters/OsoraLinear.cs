using TorchSharp;
using TorchSharp.Utils;
using TorchSharp.Modules;
using static TorchSharp.torch;
using QuantPeft.Quant.Torch;

namespace QuantPeft.Trainers.Adapters;

/// <summary>
/// OSoRA: <c>y = W_res x + O ⊙ (U_r (S_r ⊙ (V_rᵀ x)))</c> with U_r, V_r frozen from the SVD of W₀ and only the
/// r singular values S_r and the output vector O [out] trained — r + d_out values per layer.
/// </summary>
public sealed class OsoraLinear : AdapterLayer, IAdapterLayer
{
    [ComponentName(Name = "base_layer")]
    private readonly nn.Module<Tensor, Tensor> _base;

    [ComponentName(Name = "osora_U")]
    private readonly Tensor _u;

    [ComponentName(Name = "osora_V")]
    private readonly Tensor _vh;

    [ComponentName(Name = "osora_S")]
    private readonly Parameter _s;

    [ComponentName(Name = "osora_O")]
    private readonly Parameter _o;

    private readonly AdapterLayerState _state;

    /// <summary>Builds the layer from a residual base and the frozen factors of <see cref="SvdInit.Osora"/>.</summary>
    /// <param name="residualBase">A base over W_res implementing <see cref="IBaseLinear"/>.</param>
    /// <param name="u">U_r [out, r] (copied, frozen).</param>
    /// <param name="s">S_r [r] (copied, trainable).</param>
    /// <param name="vh">V_rᵀ [r, in] (copied, frozen).</param>
    /// <param name="dtype">Dtype of the adapter tensors.</param>
    public OsoraLinear(nn.Module<Tensor, Tensor> residualBase, Tensor u, Tensor s, Tensor vh, ScalarType dtype = ScalarType.Float32)
        : base(nameof(OsoraLinear))
    {
        _state = new AdapterLayerState(residualBase, "OSoRA");
        long r = s.shape[0];
        if (u.dim() != 2 || u.shape[0] != _state.Base.OutFeatures || u.shape[1] != r || vh.dim() != 2 || vh.shape[0] != r || vh.shape[1] != _state.Base.InFeatures)
            throw new AdapterException($"OSoRA factors U [{string.Join(", ", u.shape)}], S [{r}], Vᵀ [{string.Join(", ", vh.shape)}] do not fit a {_state.Base.OutFeatures}×{_state.Base.InFeatures} layer");
        _base = residualBase;
        Device device = _state.Base.Device;
        _u = u.detach().to(dtype, device, copy: true);
        _vh = vh.detach().to(dtype, device, copy: true);
        _s = new Parameter(s.detach().to(dtype, device, copy: true), requires_grad: true);
        _o = new Parameter(torch.ones(_state.Base.OutFeatures, dtype: dtype, device: device), requires_grad: true);
        RegisterComponents();
    }

    /// <summary>Rank r.</summary>
    public long Rank => _s.shape[0];

    /// <summary>Trainable singular values S_r.</summary>
    public Tensor S => _s;

    /// <summary>Trainable output vector O.</summary>
    public Tensor O => _o;

    private protected override AdapterLayerState State => _state;

    /// <inheritdoc />
    public long TrainableParameterCount => _s.numel() + _o.numel();

    /// <inheritdoc />
    public override Tensor forward(Tensor x)
    {
        if (_state.Bypassed) return _base.forward(x);
        using var scope = torch.NewDisposeScope();
        Tensor xs = x.to(_vh.dtype);
        Tensor low = nn.functional.linear(xs, _vh).mul(_s);            // (..., r)
        Tensor up = nn.functional.linear(low, _u).mul(_o);             // (..., out)
        return _base.forward(x).Add(up.to(x.dtype)).MoveToOuterDisposeScope();
    }

    /// <summary>The update diag(O) U_r diag(S_r) V_rᵀ [out, in] in f32 (f64 for an f64 adapter).</summary>
    public Tensor Delta()
    {
        using var scope = torch.NewDisposeScope();
        ScalarType t = _u.dtype == ScalarType.Float64 ? ScalarType.Float64 : ScalarType.Float32;
        Tensor d = _u.to(t).mul(_s.detach().to(t).unsqueeze(0)).matmul(_vh.to(t)).mul(_o.detach().to(t).unsqueeze(1));
        return d.MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    public void Merge() => _state.Merge(() =>
    {
        using var d = Delta();
        _state.Base.AddToWeight(d);
    }, "cannot merge an OSoRA adapter into a quantized base");

    /// <inheritdoc />
    public void Unmerge() => _state.Unmerge(() =>
    {
        using var d = Delta().neg_();
        _state.Base.AddToWeight(d);
    });

    /// <inheritdoc />
    public IReadOnlyDictionary<string, Tensor> AdapterTensors() => new Dictionary<string, Tensor>
    {
        ["osora_U"] = _u, ["osora_V"] = _vh, ["osora_S"] = _s, ["osora_O"] = _o,
    };

    /// <inheritdoc />
    public void LoadAdapterTensors(IReadOnlyDictionary<string, Tensor> tensors) =>
        AdapterTensorChecks.CopyInto(tensors, AdapterTensors(), "OSoRA layer");
}
