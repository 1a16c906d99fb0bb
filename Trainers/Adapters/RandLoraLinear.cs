using TorchSharp;
using TorchSharp.Utils;
using TorchSharp.Modules;
using static TorchSharp.torch;
using QuantPeft.Quant.Torch;

namespace QuantPeft.Trainers.Adapters;

/// <summary>
/// RandLoRA (Albert et al., ICLR 2025): a full-rank update ΔW = s · Σ_{i=1..n} B_i Λ_i A Γ_i from frozen random bases the
/// model's layers share (<see cref="RandLoraBases"/>: A [r, min], B_i [max, r]) and trained diagonal scalings Λ_i (r values)
/// and Γ_i (min values), n = ⌈min(d_in, d_out) / r⌉, so the n rank-r terms together reach rank min(d_in, d_out).
/// s = α / r. The trained tensors are PEFT's <c>randlora_lambda</c> [r, n] (Λ_i is its column i, init 0, so the update
/// starts at zero) and <c>randlora_gamma</c> [n, min] (Γ_i is its row i, init 1 / max(d_in, d_out)): n·(r + min) values.
/// When d_in &gt; d_out the terms act on the transposed weight, as in PEFT. The forward never forms ΔW
/// (<see cref="RandLoraFunction"/>).
/// </summary>
/// <remarks>
/// PEFT pairs the flattened bases so that the term of Λ_i's entry k, λ[k, i] · A[k] ⊙ γ[i], is multiplied by column
/// k·n + i of the stored B read as [max, n·r]: B_i is a fixed relabelling of the stored random columns. This layer reads
/// the stored tensors the same way, so a PEFT folder of the same bases holds the same update.
/// </remarks>
public sealed class RandLoraLinear : AdapterLayer, IAdapterLayer
{
    [ComponentName(Name = "base_layer")]
    private readonly nn.Module<Tensor, Tensor> _base;

    [ComponentName(Name = "randlora_lambda")]
    private readonly Parameter _lambda;

    [ComponentName(Name = "randlora_gamma")]
    private readonly Parameter _gamma;

    [ComponentName(Name = "randlora_dropout")]
    private readonly Dropout _dropout;

    private readonly AdapterLayerState _state;
    private readonly RandLoraBases _bases;
    private readonly double _scaling;

    /// <summary>Wraps <paramref name="baseLayer"/>; <paramref name="bases"/> is not owned (every layer shares it).</summary>
    /// <param name="baseLayer">A frozen projection implementing <see cref="IBaseLinear"/>.</param>
    /// <param name="bases">The shared bases, at least as wide as this layer.</param>
    /// <param name="alpha">α; the update is scaled by α / r (PEFT's <c>randlora_alpha</c>).</param>
    /// <param name="dropout">Dropout on the adapter's input.</param>
    /// <exception cref="AdapterException">The base is not an <see cref="IBaseLinear"/>, or the bases are smaller than the layer.</exception>
    public RandLoraLinear(nn.Module<Tensor, Tensor> baseLayer, RandLoraBases bases, double alpha, double dropout = 0.0) : base(nameof(RandLoraLinear))
    {
        _state = new AdapterLayerState(baseLayer, "RandLoRA", dropout: dropout);
        long inF = _state.Base.InFeatures, outF = _state.Base.OutFeatures;
        long min = Math.Min(inF, outF), max = Math.Max(inF, outF);
        if (min > bases.MinDim || max > bases.MaxDim)
            throw new AdapterException($"RandLoRA shared bases (A [{string.Join(", ", bases.A.shape)}], B [{string.Join(", ", bases.B.shape)}]) are smaller than the {outF}×{inF} layer");
        _base = baseLayer;
        _bases = bases;
        _scaling = alpha / bases.Rank;
        int n = RandLoraBases.BaseCount(min, bases.Rank);
        Device device = _state.Base.Device;
        _lambda = new Parameter(torch.zeros(bases.Rank, n, dtype: bases.A.dtype, device: device), requires_grad: true);
        using (Scalar g = (1.0 / max).ToScalar())
            _gamma = new Parameter(torch.full([n, min], g, dtype: bases.A.dtype, device: device), requires_grad: true);
        _dropout = nn.Dropout(dropout);
        RegisterComponents();
    }

    /// <summary>Λ: <c>randlora_lambda</c> [r, n].</summary>
    public Tensor Lambda => _lambda;

    /// <summary>Γ: <c>randlora_gamma</c> [n, min(d_in, d_out)].</summary>
    public Tensor Gamma => _gamma;

    /// <summary>The shared bases this layer reads (not owned).</summary>
    public RandLoraBases SharedBases => _bases;

    /// <summary>s = α / r.</summary>
    public double Scaling => _scaling;

    private protected override AdapterLayerState State => _state;

    /// <inheritdoc />
    public long TrainableParameterCount => _lambda.numel() + _gamma.numel();

    /// <inheritdoc />
    public override Tensor forward(Tensor x)
    {
        if (_state.Bypassed) return _base.forward(x);
        using var scope = torch.NewDisposeScope();
        var input = _dropout.forward(x).to(_lambda.dtype);
        var update = RandLoraFunction.apply(input, _lambda, _gamma, _bases.A, _bases.B, _state.Base.InFeatures, _state.Base.OutFeatures, _scaling);
        var y = _base.forward(x);
        return y.Add(update.to(y.dtype)).MoveToOuterDisposeScope();
    }

    /// <summary>ΔW [out, in] in f32 (f64 for f64 bases).</summary>
    public Tensor Delta() => SlicedDelta(_bases.A, _bases.B, _lambda, _gamma, _state.Base.InFeatures, _state.Base.OutFeatures, _scaling);

    /// <summary>
    /// PEFT's RandLoRA update for one layer from the shared A [r, 1, ≥ min] and B [≥ max, ≥ n, r] and the layer's λ [r, n]
    /// and γ [n, min]: s · P Q [max, min], transposed to [out, in] when d_in &gt; d_out, in f32 (f64 when A is f64). The export merges saved
    /// adapters with it too.
    /// </summary>
    public static Tensor SlicedDelta(Tensor a, Tensor b, Tensor lambda, Tensor gamma, long inFeatures, long outFeatures, double scaling)
    {
        using var scope = torch.NewDisposeScope();
        var f = a.dtype == ScalarType.Float64 ? ScalarType.Float64 : ScalarType.Float32;
        var q = RandLoraFunction.Q(lambda.detach().to(f), gamma.detach().to(f), a.to(f));
        var p = RandLoraFunction.P(b.to(f), Math.Max(inFeatures, outFeatures), lambda.shape[1]);
        Tensor d;
        using (Scalar s = scaling.ToScalar()) d = p.matmul(q).mul_(s);
        return (inFeatures <= outFeatures ? d : d.t().contiguous()).MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    public void Merge() => _state.Merge(() =>
    {
        using var d = Delta();
        _state.Base.AddToWeight(d);
    }, "cannot merge a RandLoRA adapter into a quantized base; export a merged model from the dense weights instead");

    /// <inheritdoc />
    public void Unmerge() => _state.Unmerge(() =>
    {
        using var d = Delta().neg_();
        _state.Base.AddToWeight(d);
    });

    /// <inheritdoc />
    public IReadOnlyDictionary<string, Tensor> AdapterTensors() => new Dictionary<string, Tensor>
    {
        ["randlora_lambda"] = _lambda, ["randlora_gamma"] = _gamma,
    };

    /// <inheritdoc />
    public void LoadAdapterTensors(IReadOnlyDictionary<string, Tensor> tensors) =>
        AdapterTensorChecks.CopyInto(tensors, AdapterTensors(), "RandLoRA layer");
}
