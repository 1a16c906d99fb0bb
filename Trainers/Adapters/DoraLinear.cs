using TorchSharp;
using TorchSharp.Utils;
using TorchSharp.Modules;
using static TorchSharp.torch;
using QuantPeft.Quant.Torch;

namespace QuantPeft.Trainers.Adapters;

/// <summary>
/// DoRA: the adapted weight W' = m ⊙ (W₀ + s·BA) / ‖W₀ + s·BA‖, with ‖·‖ the L2 norm of each output row and m
/// a trainable magnitude per output feature, initialised to ‖W₀‖ so the layer starts unchanged.
/// </summary>
/// <remarks>
/// As in the DoRA paper (§4.3) and PEFT, the norm is treated as a constant in backward (detached), which
/// saves keeping the full adapted weight for the gradient. Forward:
/// <c>y = base(x) + (m/n − 1) ⊙ x W₀ᵀ + (m/n) ⊙ s · B A dropout(x)</c>.
/// </remarks>
public sealed class DoraLinear : nn.Module<Tensor, Tensor>, IAdapterLayer
{
    [ComponentName(Name = "base_layer")]
    private readonly nn.Module<Tensor, Tensor> _base;

    [ComponentName(Name = "lora")]
    private readonly LowRankPair _pair;

    [ComponentName(Name = "lora_magnitude_vector")]
    private readonly Parameter _magnitude;

    [ComponentName(Name = "lora_dropout")]
    private readonly Dropout _dropout;

    private readonly IBaseLinear _baseLinear;
    private readonly ScalarType _ct; // f32 for the norm arithmetic, f64 when the adapter itself is f64
    private Tensor? _mergedScale;

    /// <summary>Wraps <paramref name="baseLayer"/> with a DoRA adapter (B = 0, m = row norms of W₀).</summary>
    public DoraLinear(nn.Module<Tensor, Tensor> baseLayer, LoraOptions options, ScalarType dtype = ScalarType.Float32)
        : base(nameof(DoraLinear))
    {
        _baseLinear = baseLayer as IBaseLinear ?? throw new AdapterException($"DoRA needs a base implementing {nameof(IBaseLinear)}, got {baseLayer.GetType().Name}");
        if (options.Rank > Math.Min(_baseLinear.InFeatures, _baseLinear.OutFeatures))
            throw new AdapterException($"DoRA rank {options.Rank} exceeds min(in, out) = {Math.Min(_baseLinear.InFeatures, _baseLinear.OutFeatures)}");
        Options = options;
        _base = baseLayer;
        _ct = dtype == ScalarType.Float64 ? ScalarType.Float64 : ScalarType.Float32;
        _pair = new LowRankPair(_baseLinear.InFeatures, _baseLinear.OutFeatures, options.Rank, dtype, _baseLinear.Device);
        using (var w0 = _baseLinear.DenseWeight(_ct))
        using (var norm = RowNorm(w0))
            _magnitude = new Parameter(norm.to(dtype), requires_grad: true);
        _dropout = nn.Dropout(options.Dropout);
        RegisterComponents();
    }

    /// <summary>The adapter's hyper-parameters.</summary>
    public LoraOptions Options { get; }

    /// <summary>The magnitude vector m [out].</summary>
    public Tensor Magnitude => _magnitude;

    /// <inheritdoc />
    public IBaseLinear BaseLayer => _baseLinear;

    private bool _enabled = true;

    /// <inheritdoc />
    public bool Enabled
    {
        get => _enabled;
        set => _enabled = value || !Merged ? value : throw new AdapterException("cannot turn off a merged adapter; unmerge it first");
    }

    /// <inheritdoc />
    public bool Merged { get; private set; }

    /// <inheritdoc />
    public long TrainableParameterCount => _pair.A.numel() + _pair.B.numel() + _magnitude.numel();

    /// <inheritdoc />
    public override Tensor forward(Tensor x)
    {
        if (Merged || !_enabled) return _base.forward(x);
        using var scope = torch.NewDisposeScope();
        Tensor norm = AdaptedRowNorm().detach();                        // (out)
        Tensor scale = _magnitude.to(_ct).div(norm);     // (out)
        Tensor baseOut = _base.forward(x);                               // (..., out)
        Tensor baseNoBias = _baseLinear.ForwardNoBias(x).to(_ct);
        Tensor lora = _pair.Apply(_dropout.forward(x)).to(_ct).Mul(Options.Scaling);
        Tensor extra = scale.Sub(1.0).mul(baseNoBias).Add(scale.mul(lora));
        return baseOut.Add(extra.to(baseOut.dtype)).MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    public void Merge()
    {
        if (Merged) return;
        if (!_baseLinear.SupportsMerge)
            throw new AdapterException("cannot merge a DoRA adapter into a quantized base; export a merged model from the dense weights instead");
        using var scope = torch.NewDisposeScope();
        Tensor w0 = _baseLinear.DenseWeight(_ct);
        Tensor adapted = w0.Add(_pair.Delta(_ct), Options.Scaling);
        Tensor scale = _magnitude.detach().to(_ct).div(RowNorm(adapted));
        Tensor merged = adapted.mul(scale.unsqueeze(1));
        _baseLinear.AddToWeight(merged.sub(w0));
        _mergedScale = scale.detach().clone().MoveToOuterDisposeScope();
        Merged = true;
    }

    /// <inheritdoc />
    public void Unmerge()
    {
        if (!Merged) return;
        using var scope = torch.NewDisposeScope();
        Tensor merged = _baseLinear.DenseWeight(_ct);
        Tensor w0 = merged.div(_mergedScale!.unsqueeze(1)).sub(_pair.Delta(_ct).Mul(Options.Scaling));
        _baseLinear.AddToWeight(w0.sub(merged));
        _mergedScale!.Dispose();
        _mergedScale = null;
        Merged = false;
    }

    /// <inheritdoc />
    public IReadOnlyDictionary<string, Tensor> AdapterTensors()
    {
        var t = _pair.Tensors();
        t["lora_magnitude_vector"] = _magnitude;
        return t;
    }

    /// <inheritdoc />
    public void LoadAdapterTensors(IReadOnlyDictionary<string, Tensor> tensors) =>
        AdapterTensorChecks.CopyInto(tensors, AdapterTensors(), "DoRA layer");

    private Tensor AdaptedRowNorm()
    {
        using var scope = torch.NewDisposeScope();
        Tensor w = _baseLinear.DenseWeight(_ct).Add(_pair.B.to(_ct).matmul(_pair.A.to(_ct)), Options.Scaling);
        return RowNorm(w).MoveToOuterDisposeScope();
    }

    private static Tensor RowNorm(Tensor w) => w.Square().sum(1).sqrt();

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing) _mergedScale?.Dispose();
        base.Dispose(disposing);
    }
}
