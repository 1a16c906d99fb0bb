using QuantPeft.Quant.Torch;
using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Adapters;

/// <summary>
/// LoRA-GA's layer: <c>y = base(x) + s·(B A − B₀ A₀)·dropout(x)</c>, with A, B trained from A₀, B₀ (<see cref="LoraGaInit"/>)
/// and the frozen offset s·B₀A₀ kept as its two thin factors, so the model starts exactly as loaded.
/// </summary>
/// <remarks>
/// The paper writes the offset into the weight (W ← W − s·B₀A₀). Kept as factors instead, it is exact on every base:
/// a 4-bit base would have to re-quantize W − s·B₀A₀ (an error of the base's own quantization size, far larger than
/// s·B₀A₀), and even a bf16 weight rounds it away. The price is r·(in + out) frozen f32 values per target and two
/// thin matmuls, the same as the adapter itself; merging folds s(BA − B₀A₀) into a dense weight exactly as the paper's
/// residual would, and the adapter is saved as the rank-2r LoRA [A; A₀], [B, −B₀] on the original base, as PiSSA is.
/// </remarks>
public sealed class LoraGaLinear : AdapterLayer, IAdapterLayer
{
    [ComponentName(Name = "base_layer")]
    private readonly nn.Module<Tensor, Tensor> _base;

    [ComponentName(Name = "lora")]
    private readonly LowRankPair _pair;

    [ComponentName(Name = "lora_A0")]
    private readonly Tensor _a0;

    [ComponentName(Name = "lora_B0")]
    private readonly Tensor _b0;

    [ComponentName(Name = "lora_dropout")]
    private readonly Dropout _dropout;

    private readonly AdapterLayerState _state;

    /// <summary>Wraps <paramref name="baseLayer"/> with A = A₀, B = B₀ trained and −s·B₀A₀ frozen.</summary>
    /// <param name="baseLayer">A frozen projection implementing <see cref="IBaseLinear"/> (the original weights).</param>
    /// <param name="options">Rank, α, dropout, rsLoRA.</param>
    /// <param name="a0">A₀ [r, in] (copied).</param>
    /// <param name="b0">B₀ [out, r] (copied).</param>
    public LoraGaLinear(nn.Module<Tensor, Tensor> baseLayer, LoraOptions options, Tensor a0, Tensor b0) : base(nameof(LoraGaLinear))
    {
        _state = new AdapterLayerState(baseLayer, "LoRA-GA", options.Rank);
        if (a0.dim() != 2 || a0.shape[0] != options.Rank || a0.shape[1] != _state.Base.InFeatures || b0.dim() != 2 || b0.shape[0] != _state.Base.OutFeatures || b0.shape[1] != options.Rank)
            throw new AdapterException($"LoRA-GA factors A₀ [{string.Join(", ", a0.shape)}], B₀ [{string.Join(", ", b0.shape)}] do not fit a rank-{options.Rank} {_state.Base.OutFeatures}×{_state.Base.InFeatures} layer");
        Options = options;
        _base = baseLayer;
        var device = _state.Base.Device;
        _pair = new LowRankPair(_state.Base.InFeatures, _state.Base.OutFeatures, options.Rank, ScalarType.Float32, device, a0, b0);
        _a0 = a0.detach().to(ScalarType.Float32, device, copy: true);
        _b0 = b0.detach().to(ScalarType.Float32, device, copy: true);
        _dropout = nn.Dropout(options.Dropout);
        RegisterComponents();
    }

    /// <summary>The adapter's hyper-parameters.</summary>
    public LoraOptions Options { get; }

    /// <summary>A [r, in] (trained).</summary>
    public Tensor A => _pair.A;

    /// <summary>B [out, r] (trained).</summary>
    public Tensor B => _pair.B;

    /// <summary>A₀ [r, in] (frozen).</summary>
    public Tensor A0 => _a0;

    /// <summary>B₀ [out, r] (frozen).</summary>
    public Tensor B0 => _b0;

    private protected override AdapterLayerState State => _state;

    /// <inheritdoc />
    public long TrainableParameterCount => A.numel() + B.numel();

    /// <inheritdoc />
    public override Tensor forward(Tensor x)
    {
        if (_state.Bypassed) return _base.forward(x);
        using var scope = torch.NewDisposeScope();
        var d = _dropout.forward(x);
        var xs = d.to(ScalarType.Float32);
        var offset = nn.functional.linear(nn.functional.linear(xs, _a0), _b0);
        var update = _pair.Apply(xs).Add(offset, -1.0).to(x.dtype);
        var y = _base.forward(x).Add(update, Options.Scaling);
        return y.MoveToOuterDisposeScope();
    }

    // s·(BA − B₀A₀) [out, in], f32.
    private Tensor Delta()
    {
        using var scope = torch.NewDisposeScope();
        var d = _pair.Delta().Add(_b0.matmul(_a0), -1.0).Mul(Options.Scaling);
        return d.MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    public void Merge() => _state.Merge(() =>
    {
        using var delta = Delta();
        _state.Base.AddToWeight(delta);
    }, "cannot merge an adapter into a quantized base; export a merged model from the dense weights instead");

    /// <inheritdoc />
    public void Unmerge() => _state.Unmerge(() =>
    {
        using var delta = Delta().neg_();
        _state.Base.AddToWeight(delta);
    });

    /// <inheritdoc />
    public IReadOnlyDictionary<string, Tensor> AdapterTensors() => new Dictionary<string, Tensor>
    {
        ["lora_A.weight"] = A, ["lora_B.weight"] = B, ["lora_A0"] = _a0, ["lora_B0"] = _b0,
    };

    /// <inheritdoc />
    public void LoadAdapterTensors(IReadOnlyDictionary<string, Tensor> tensors) => AdapterTensorChecks.CopyInto(tensors, AdapterTensors(), "LoRA-GA layer");
}
