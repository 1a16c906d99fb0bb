using TorchSharp;
using TorchSharp.Utils;
using TorchSharp.Modules;
using static TorchSharp.torch;
using QuantPeft.Quant.Torch;

namespace QuantPeft.Trainers.Adapters;

/// <summary>
/// NLoRA (and the paper's SLoRA structure): three trained factors, <c>y = base(x) + s · B M A dropout(x)</c> with
/// A [r, in], the intermediate M [r, r] and B [out, r], s = α/r. NLoRA starts them at the Nyström approximation of W
/// (<see cref="NystromInit"/>) over the residual base. The update is a rank-r LoRA with B′ = B·M, which is how it is saved.
/// </summary>
public sealed class NloraLinear : AdapterLayer, IAdapterLayer
{
    [ComponentName(Name = "base_layer")]
    private readonly nn.Module<Tensor, Tensor> _base;

    [ComponentName(Name = "lora_A")]
    private readonly Linear _a;

    [ComponentName(Name = "lora_N")]
    private readonly Linear _m;

    [ComponentName(Name = "lora_B")]
    private readonly Linear _b;

    [ComponentName(Name = "lora_dropout")]
    private readonly Dropout _dropout;

    private readonly AdapterLayerState _state;

    /// <summary>Wraps <paramref name="baseLayer"/> (the residual base) with the given initial factors (copied).</summary>
    /// <param name="baseLayer">A frozen projection implementing <see cref="IBaseLinear"/>.</param>
    /// <param name="options">Rank, α, dropout, rsLoRA.</param>
    /// <param name="initA">A [r, in].</param>
    /// <param name="initB">B [out, r].</param>
    /// <param name="initM">M [r, r].</param>
    /// <param name="dtype">Dtype of the factors.</param>
    /// <exception cref="AdapterException">The base is not an <see cref="IBaseLinear"/>, r exceeds min(in, out), or a factor has another shape.</exception>
    public NloraLinear(nn.Module<Tensor, Tensor> baseLayer, LoraOptions options, Tensor initA, Tensor initB, Tensor initM, ScalarType dtype = ScalarType.Float32)
        : base(nameof(NloraLinear))
    {
        _state = new AdapterLayerState(baseLayer, "NLoRA", options.Rank);
        Options = options;
        _base = baseLayer;
        long r = options.Rank, inF = _state.Base.InFeatures, outF = _state.Base.OutFeatures;
        CheckShape(initA, [r, inF], "A");
        CheckShape(initB, [outF, r], "B");
        CheckShape(initM, [r, r], "M");
        var device = _state.Base.Device;
        _a = nn.Linear(inF, r, hasBias: false, device: device, dtype: dtype);
        _m = nn.Linear(r, r, hasBias: false, device: device, dtype: dtype);
        _b = nn.Linear(r, outF, hasBias: false, device: device, dtype: dtype);
        using (torch.no_grad())
        {
            _a.weight!.copy_(initA);
            _m.weight!.copy_(initM);
            _b.weight!.copy_(initB);
        }
        _dropout = nn.Dropout(options.Dropout);
        RegisterComponents();
    }

    /// <summary>The adapter's hyper-parameters.</summary>
    public LoraOptions Options { get; }

    /// <summary>A [r, in].</summary>
    public Tensor A => _a.weight!;

    /// <summary>The intermediate M [r, r].</summary>
    public Tensor M => _m.weight!;

    /// <summary>B [out, r].</summary>
    public Tensor B => _b.weight!;

    private protected override AdapterLayerState State => _state;

    /// <inheritdoc />
    public long TrainableParameterCount => A.numel() + M.numel() + B.numel();

    /// <inheritdoc />
    public override Tensor forward(Tensor x)
    {
        if (_state.Bypassed) return _base.forward(x);
        using var scope = torch.NewDisposeScope();
        var xs = _dropout.forward(x).to(A.dtype);
        var update = _b.forward(_m.forward(_a.forward(xs))).to(x.dtype);
        return _base.forward(x).Add(update, Options.Scaling).MoveToOuterDisposeScope();
    }

    /// <summary>The equivalent LoRA pair (A, B·M) in f32 (new tensors): s·(B·M)·A is the layer's update.</summary>
    public (Tensor A, Tensor B) FoldedPair()
    {
        using var scope = torch.NewDisposeScope();
        var a = A.detach().to(ScalarType.Float32).clone();
        var b = B.detach().to(ScalarType.Float32).matmul(M.detach().to(ScalarType.Float32));
        return (a.MoveToOuterDisposeScope(), b.MoveToOuterDisposeScope());
    }

    /// <summary>s·B·M·A [out, in] in f32 (a new tensor).</summary>
    public Tensor Delta()
    {
        using var scope = torch.NewDisposeScope();
        var (a, b) = FoldedPair();
        return b.matmul(a).MulInPlace(Options.Scaling).MoveToOuterDisposeScope();
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
    public IReadOnlyDictionary<string, Tensor> AdapterTensors() =>
        new Dictionary<string, Tensor> { ["lora_A.weight"] = A, ["lora_N.weight"] = M, ["lora_B.weight"] = B };

    /// <inheritdoc />
    public void LoadAdapterTensors(IReadOnlyDictionary<string, Tensor> tensors) => AdapterTensorChecks.CopyInto(tensors, AdapterTensors(), "NLoRA layer");

    private static void CheckShape(Tensor t, long[] shape, string name)
    {
        if (!t.shape.SequenceEqual(shape))
            throw new AdapterException($"NLoRA {name} must be [{string.Join(", ", shape)}], got [{string.Join(", ", t.shape)}]");
    }
}
