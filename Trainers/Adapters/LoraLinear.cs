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
public sealed class LoraLinear : nn.Module<Tensor, Tensor>, IAdapterLayer
{
    [ComponentName(Name = "base_layer")]
    private readonly nn.Module<Tensor, Tensor> _base;

    [ComponentName(Name = "lora")]
    private readonly LowRankPair _pair;

    [ComponentName(Name = "lora_dropout")]
    private readonly Dropout _dropout;

    private readonly IBaseLinear _baseLinear;

    /// <summary>Wraps <paramref name="baseLayer"/> with a fresh (B = 0) adapter or given factors.</summary>
    /// <param name="baseLayer">A frozen projection implementing <see cref="IBaseLinear"/>.</param>
    /// <param name="options">Rank, α, dropout, rsLoRA.</param>
    /// <param name="dtype">Dtype of A and B.</param>
    /// <param name="initA">Initial A [r, in] (PiSSA), or null for kaiming-uniform.</param>
    /// <param name="initB">Initial B [out, r] (PiSSA), or null for zeros.</param>
    public LoraLinear(nn.Module<Tensor, Tensor> baseLayer, LoraOptions options, ScalarType dtype = ScalarType.Float32, Tensor? initA = null, Tensor? initB = null)
        : base(nameof(LoraLinear))
    {
        _baseLinear = baseLayer as IBaseLinear ?? throw new AdapterException($"LoRA needs a base implementing {nameof(IBaseLinear)}, got {baseLayer.GetType().Name}");
        if (options.Rank > Math.Min(_baseLinear.InFeatures, _baseLinear.OutFeatures))
            throw new AdapterException($"LoRA rank {options.Rank} exceeds min(in, out) = {Math.Min(_baseLinear.InFeatures, _baseLinear.OutFeatures)}");
        Options = options;
        _base = baseLayer;
        _pair = new LowRankPair(_baseLinear.InFeatures, _baseLinear.OutFeatures, options.Rank, dtype, _baseLinear.Device, initA, initB);
        _dropout = nn.Dropout(options.Dropout);
        RegisterComponents();
    }

    /// <summary>The adapter's hyper-parameters.</summary>
    public LoraOptions Options { get; }

    /// <summary>A [r, in].</summary>
    public Tensor A => _pair.A;

    /// <summary>B [out, r].</summary>
    public Tensor B => _pair.B;

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
    public long TrainableParameterCount => A.numel() + B.numel();

    /// <inheritdoc />
    public override Tensor forward(Tensor x)
    {
        if (Merged || !_enabled) return _base.forward(x);
        using var scope = torch.NewDisposeScope();
        var y = _base.forward(x).Add(_pair.Apply(_dropout.forward(x)), Options.Scaling);
        return y.MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    public void Merge()
    {
        if (Merged) return;
        RequireMergeable();
        using var delta = _pair.Delta().MulInPlace(Options.Scaling);
        _baseLinear.AddToWeight(delta);
        Merged = true;
    }

    /// <inheritdoc />
    public void Unmerge()
    {
        if (!Merged) return;
        using var delta = _pair.Delta().MulInPlace(-Options.Scaling);
        _baseLinear.AddToWeight(delta);
        Merged = false;
    }

    /// <inheritdoc />
    public IReadOnlyDictionary<string, Tensor> AdapterTensors() => _pair.Tensors();

    /// <inheritdoc />
    public void LoadAdapterTensors(IReadOnlyDictionary<string, Tensor> tensors) => AdapterTensorChecks.CopyInto(tensors, _pair.Tensors(), "LoRA layer");

    private void RequireMergeable()
    {
        if (!_baseLinear.SupportsMerge)
            throw new AdapterException("cannot merge an adapter into a quantized base; export a merged model from the dense weights instead");
    }
}
