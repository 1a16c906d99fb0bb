using TorchSharp;
using TorchSharp.Utils;
using TorchSharp.Modules;
using static TorchSharp.torch;
using QuantPeft.Quant.Torch;

namespace QuantPeft.Trainers.Adapters;

/// <summary>
/// LoRA (and PiSSA, which is LoRA with an SVD initialisation and a residual base):
/// <c>y = base(x) + s · B A dropout(x)</c> with s = α/r, or α/√r with rsLoRA.
/// </summary>
public sealed class LoraLinear : AdapterLayer, IAdapterLayer
{
    [ComponentName(Name = "base_layer")]
    private readonly nn.Module<Tensor, Tensor> _base;

    [ComponentName(Name = "lora")]
    private readonly LowRankPair _pair;

    [ComponentName(Name = "lora_dropout")]
    private readonly Dropout _dropout;

    private readonly AdapterLayerState _state;

    /// <summary>Wraps <paramref name="baseLayer"/> with a fresh (B = 0) adapter or given factors.</summary>
    /// <param name="baseLayer">A frozen projection implementing <see cref="IBaseLinear"/>.</param>
    /// <param name="options">Rank, α, dropout, rsLoRA.</param>
    /// <param name="dtype">Dtype of A and B.</param>
    /// <param name="initA">Initial A [r, in] (PiSSA), or null for kaiming-uniform.</param>
    /// <param name="initB">Initial B [out, r] (PiSSA), or null for zeros.</param>
    public LoraLinear(nn.Module<Tensor, Tensor> baseLayer, LoraOptions options, ScalarType dtype = ScalarType.Float32, Tensor? initA = null, Tensor? initB = null)
        : base(nameof(LoraLinear))
    {
        _state = new AdapterLayerState(baseLayer, "LoRA", options.Rank);
        Options = options;
        _base = baseLayer;
        _pair = new LowRankPair(_state.Base.InFeatures, _state.Base.OutFeatures, options.Rank, dtype, _state.Base.Device, initA, initB);
        _dropout = nn.Dropout(options.Dropout);
        RegisterComponents();
    }

    /// <summary>The adapter's hyper-parameters.</summary>
    public LoraOptions Options { get; }

    /// <summary>A [r, in].</summary>
    public Tensor A => _pair.A;

    /// <summary>B [out, r].</summary>
    public Tensor B => _pair.B;

    private protected override AdapterLayerState State => _state;

    /// <inheritdoc />
    public long TrainableParameterCount => A.numel() + B.numel();

    /// <inheritdoc />
    public override Tensor forward(Tensor x)
    {
        if (_state.Bypassed) return _base.forward(x);
        using var scope = torch.NewDisposeScope();
        var y = _base.forward(x).Add(_pair.Apply(_dropout.forward(x)), Options.Scaling);
        return y.MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    public void Merge() => _state.Merge(() =>
    {
        using var delta = _pair.Delta().MulInPlace(Options.Scaling);
        _state.Base.AddToWeight(delta);
    }, "cannot merge an adapter into a quantized base; export a merged model from the dense weights instead");

    /// <inheritdoc />
    public void Unmerge() => _state.Unmerge(() =>
    {
        using var delta = _pair.Delta().MulInPlace(-Options.Scaling);
        _state.Base.AddToWeight(delta);
    });

    /// <inheritdoc />
    public IReadOnlyDictionary<string, Tensor> AdapterTensors() => _pair.Tensors();

    /// <inheritdoc />
    public void LoadAdapterTensors(IReadOnlyDictionary<string, Tensor> tensors) => AdapterTensorChecks.CopyInto(tensors, _pair.Tensors(), "LoRA layer");
}
