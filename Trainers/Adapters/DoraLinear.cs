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
public sealed class DoraLinear : AdapterLayer, IAdapterLayer
{
    [ComponentName(Name = "base_layer")]
    private readonly nn.Module<Tensor, Tensor> _base;

    [ComponentName(Name = "lora")]
    private readonly LowRankPair _pair;

    [ComponentName(Name = "lora_magnitude_vector")]
    private readonly Parameter _magnitude;

    [ComponentName(Name = "lora_dropout")]
    private readonly Dropout _dropout;

    private readonly AdapterLayerState _state;
    private readonly ScalarType _ct; // f32 for the norm arithmetic, f64 when the adapter itself is f64
    private Tensor? _mergedScale;
    private Tensor? _frozenNorm;       // the adapted row norm of one FrozenAdapterWeights span
    private long _frozenNormSpan;

    /// <summary>Wraps <paramref name="baseLayer"/> with a DoRA adapter (B = 0, m = row norms of W₀).</summary>
    public DoraLinear(nn.Module<Tensor, Tensor> baseLayer, LoraOptions options, ScalarType dtype = ScalarType.Float32)
        : base(nameof(DoraLinear))
    {
        _state = new AdapterLayerState(baseLayer, "DoRA", options.Rank);
        Options = options;
        _base = baseLayer;
        _ct = dtype == ScalarType.Float64 ? ScalarType.Float64 : ScalarType.Float32;
        _pair = new LowRankPair(_state.Base.InFeatures, _state.Base.OutFeatures, options.Rank, dtype, _state.Base.Device);
        using (var norm = AdaptedRowNorm(withDelta: false))
            _magnitude = new Parameter(norm.to(dtype), requires_grad: true);
        _dropout = nn.Dropout(options.Dropout);
        RegisterComponents();
    }

    /// <summary>The adapter's hyper-parameters.</summary>
    public LoraOptions Options { get; }

    /// <summary>The magnitude vector m [out].</summary>
    public Tensor Magnitude => _magnitude;

    private protected override AdapterLayerState State => _state;

    /// <inheritdoc />
    public long TrainableParameterCount => _pair.A.numel() + _pair.B.numel() + _magnitude.numel();

    /// <inheritdoc />
    public override Tensor forward(Tensor x)
    {
        if (_state.Bypassed) return _base.forward(x);
        using var scope = torch.NewDisposeScope();
        Tensor norm = FrozenAdapterWeights.Current is long span and not 0 && !torch.is_grad_enabled()
            ? FrozenNorm(span)
            : AdaptedRowNorm(withDelta: true);                           // (out), no graph: the norm is a constant
        Tensor scale = _magnitude.to(_ct).div(norm);                     // (out)
        Tensor baseOut = _base.forward(x);                               // (..., out)
        // One base pass, as PEFT makes: the bias-free part is the output less the bias.
        Tensor? bias = _state.Base.Bias;
        Tensor baseNoBias = (bias is null ? baseOut : baseOut.sub(bias.to(baseOut.dtype))).to(_ct);
        Tensor lora = _pair.Apply(_dropout.forward(x)).to(_ct).Mul(Options.Scaling);
        // (m/n − 1)·base + (m/n)·lora written as (m/n)·(base + lora) − base: the product keeps one f32 [.., out]
        // tensor for backward (base + lora, for m's gradient) where the two products kept two.
        Tensor extra = scale.mul(baseNoBias.Add(lora)).sub(baseNoBias);
        return baseOut.Add(extra.to(baseOut.dtype)).MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    public void Merge() => _state.Merge(() =>
    {
        using var scope = torch.NewDisposeScope();
        Tensor w0 = _state.Base.DenseWeight(_ct);
        Tensor adapted = w0.Add(_pair.Delta(_ct), Options.Scaling);
        Tensor scale = _magnitude.detach().to(_ct).div(RowNorm(adapted));
        Tensor merged = adapted.mul(scale.unsqueeze(1));
        _state.Base.AddToWeight(merged.sub(w0));
        _mergedScale = scale.detach().clone().MoveToOuterDisposeScope();
    }, "cannot merge a DoRA adapter into a quantized base; export a merged model from the dense weights instead");

    /// <inheritdoc />
    public void Unmerge() => _state.Unmerge(() =>
    {
        using var scope = torch.NewDisposeScope();
        Tensor merged = _state.Base.DenseWeight(_ct);
        Tensor w0 = merged.div(_mergedScale!.unsqueeze(1)).sub(_pair.Delta(_ct).Mul(Options.Scaling));
        _state.Base.AddToWeight(w0.sub(merged));
        _mergedScale!.Dispose();
        _mergedScale = null;
    });

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

    /// <summary>Elements of one slab of rows in <see cref="AdaptedRowNorm"/> (2²⁰: 4 MiB in f32).</summary>
    public const long NormSlabElements = 1L << 20;

    /// <summary>Rows per slab of <see cref="AdaptedRowNorm"/> for a weight of <paramref name="inFeatures"/> columns.</summary>
    public static long NormSlabRows(long inFeatures) => Math.Max(1, NormSlabElements / inFeatures);

    // ‖W₀ + s·BA‖ per output row (or ‖W₀‖ without the delta), outside autograd, one slab of rows at a time: one f32
    // slab of W₀ + s·BA is all that is alive (4 bytes per slab element, in a shared buffer), never a dense [out, in]
    // copy of the weight, whose f32 copy (and its square, kept for backward) otherwise lived through each forward.
    private Tensor AdaptedRowNorm(bool withDelta)
    {
        using var noGrad = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        long rows = _state.Base.OutFeatures, slab = NormSlabRows(_state.Base.InFeatures);
        Tensor norm = torch.empty(rows, _ct, _state.Base.Device);
        Tensor? a = withDelta ? _pair.A.detach().to(_ct) : null;
        Tensor? b = withDelta ? _pair.B.detach().to(_ct) : null;
        // One slab buffer for every DoRA layer of the process: allocated per slab, the 4 MiB blocks landed between
        // the activations each forward keeps and stayed resident in the C heap's arenas.
        lock (NormWorkspace.Gate)
        {
            for (long r0 = 0; r0 < rows; r0 += slab)
            {
                using var inner = torch.NewDisposeScope();
                long n = Math.Min(slab, rows - r0);
                Tensor w = NormWorkspace.Rent(n, _state.Base.InFeatures, _ct, _state.Base.Device);
                _state.Base.CopyRowsInto(r0, w);
                // W₀ + s·B·A, accumulated by the matmul into the slab itself (no B·A temporary).
                if (a is not null) w.addmm_(b!.narrow(0, r0, n), a, beta: 1, alpha: (float)Options.Scaling);
                norm.narrow(0, r0, n).copy_(w.SquareInPlace().sum(1).sqrt_());
            }
        }
        return norm.MoveToOuterDisposeScope();
    }

    // Within one span of frozen weights the norm is computed by the span's first forward and reused by the rest.
    private Tensor FrozenNorm(long span)
    {
        if (_frozenNormSpan != span || _frozenNorm is null)
        {
            _frozenNorm?.Dispose();
            _frozenNorm = AdaptedRowNorm(withDelta: true).DetachFromDisposeScope();
            _frozenNormSpan = span;
        }
        return _frozenNorm;
    }

    private static Tensor RowNorm(Tensor w) => w.Square().sum(1).sqrt();

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _mergedScale?.Dispose();
            _frozenNorm?.Dispose();
        }
        base.Dispose(disposing);
    }
}
