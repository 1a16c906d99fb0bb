using TorchSharp;
using TorchSharp.Utils;
using TorchSharp.Modules;
using static TorchSharp.torch;
using QuantPeft.Quant.Torch;

namespace QuantPeft.Trainers.Adapters;

/// <summary>
/// DyLoRA (Valipour et al., 2022): LoRA's pair A [r, in], B [out, r] trained so that every leading block works on its own.
/// A training step uses rank b (drawn by <see cref="DyloraRanks"/>): <c>y = base(x) + (α/b) · B[:, :b] A[:b] dropout(x)</c>,
/// and in the paper's frozen mode only the b-th row of A and the b-th column of B receive a gradient (the first b − 1 are
/// used detached, those past b not at all). Evaluation and merging use <see cref="InferenceRank"/> (r unless set), so the
/// adapter truncated to k is exactly the LoRA of rank k, scaling α/k, built from the first k rows and columns.
/// </summary>
public sealed class DyloraLinear : AdapterLayer, IAdapterLayer
{
    [ComponentName(Name = "base_layer")]
    private readonly nn.Module<Tensor, Tensor> _base;

    [ComponentName(Name = "lora")]
    private readonly LowRankPair _pair;

    [ComponentName(Name = "lora_dropout")]
    private readonly Dropout _dropout;

    private readonly AdapterLayerState _state;
    private int _trainingRank;
    private int _inferenceRank;

    /// <summary>Wraps <paramref name="baseLayer"/> with a fresh pair (A kaiming-uniform, B = 0), as LoRA starts.</summary>
    /// <param name="baseLayer">A frozen projection implementing <see cref="IBaseLinear"/>.</param>
    /// <param name="options">The largest rank r, α and dropout; rsLoRA is refused (the paper scales by α/b).</param>
    /// <param name="frozen">The paper's frozen mode: a step at rank b trains only the b-th row of A and column of B.</param>
    /// <param name="dtype">Dtype of A and B.</param>
    /// <exception cref="AdapterException">The base is not an <see cref="IBaseLinear"/>, r exceeds min(in, out), or rsLoRA is asked for.</exception>
    public DyloraLinear(nn.Module<Tensor, Tensor> baseLayer, LoraOptions options, bool frozen = true, ScalarType dtype = ScalarType.Float32) : base(nameof(DyloraLinear))
    {
        _state = new AdapterLayerState(baseLayer, "DyLoRA", options.Rank);
        if (options.UseRsLora) throw new AdapterException("DyLoRA scales the rank-b update by α/b; rsLoRA's α/√r does not apply");
        Options = options;
        Frozen = frozen;
        _base = baseLayer;
        _pair = new LowRankPair(_state.Base.InFeatures, _state.Base.OutFeatures, options.Rank, dtype, _state.Base.Device);
        _dropout = nn.Dropout(options.Dropout);
        _trainingRank = _inferenceRank = options.Rank;
        RegisterComponents();
    }

    /// <summary>The largest rank r, α and dropout.</summary>
    public LoraOptions Options { get; }

    /// <summary>Whether a training step trains only the b-th row of A and column of B.</summary>
    public bool Frozen { get; }

    /// <summary>A [r, in].</summary>
    public Tensor A => _pair.A;

    /// <summary>B [out, r].</summary>
    public Tensor B => _pair.B;

    /// <summary>The rank b a forward in training mode uses (set before each step by the run's rank sampling).</summary>
    /// <exception cref="AdapterException">Outside [1, r].</exception>
    public int TrainingRank
    {
        get => _trainingRank;
        set => _trainingRank = CheckRank(value);
    }

    /// <summary>The rank k a forward in evaluation mode and a merge use: r unless the adapter is deployed truncated.</summary>
    /// <exception cref="AdapterException">Outside [1, r], or changed while merged.</exception>
    public int InferenceRank
    {
        get => _inferenceRank;
        set
        {
            if (_state.Merged && value != _inferenceRank) throw new AdapterException("cannot change the rank of a merged DyLoRA adapter; unmerge it first");
            _inferenceRank = CheckRank(value);
        }
    }

    private protected override AdapterLayerState State => _state;

    /// <inheritdoc />
    public long TrainableParameterCount => A.numel() + B.numel();

    /// <summary>The scaling of the rank-<paramref name="b"/> update, α/b.</summary>
    public double ScalingAt(int b) => Options.Alpha / CheckRank(b);

    /// <inheritdoc />
    public override Tensor forward(Tensor x)
    {
        if (_state.Bypassed) return _base.forward(x);
        using var scope = torch.NewDisposeScope();
        int b = training ? _trainingRank : _inferenceRank;
        var (a, bm) = training && Frozen ? FrozenFactors(b) : (A.narrow(0, 0, b), B.narrow(1, 0, b));
        var xs = _dropout.forward(x).to(A.dtype);
        var update = nn.functional.linear(nn.functional.linear(xs, a), bm).to(x.dtype);
        var y = _base.forward(x).Add(update, ScalingAt(b));
        return y.MoveToOuterDisposeScope();
    }

    // A[:b] and B[:, :b] where only the b-th row and column carry a gradient.
    private (Tensor A, Tensor B) FrozenFactors(int b)
    {
        if (b == 1) return (A.narrow(0, 0, 1), B.narrow(1, 0, 1));
        var a = torch.cat([A.narrow(0, 0, b - 1).detach(), A.narrow(0, b - 1, 1)], 0);
        var bm = torch.cat([B.narrow(1, 0, b - 1).detach(), B.narrow(1, b - 1, 1)], 1);
        return (a, bm);
    }

    /// <summary>The rank-<paramref name="k"/> update (α/k)·B[:, :k]·A[:k] [out, in] in f32 (a new tensor).</summary>
    public Tensor DeltaAt(int k)
    {
        CheckRank(k);
        using var scope = torch.NewDisposeScope();
        var a = A.detach().narrow(0, 0, k).to(ScalarType.Float32);
        var b = B.detach().narrow(1, 0, k).to(ScalarType.Float32);
        return b.matmul(a).MulInPlace(ScalingAt(k)).MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    public void Merge() => _state.Merge(() =>
    {
        using var delta = DeltaAt(_inferenceRank);
        _state.Base.AddToWeight(delta);
    }, "cannot merge an adapter into a quantized base; export a merged model from the dense weights instead");

    /// <inheritdoc />
    public void Unmerge() => _state.Unmerge(() =>
    {
        using var delta = DeltaAt(_inferenceRank).neg_();
        _state.Base.AddToWeight(delta);
    });

    /// <inheritdoc />
    public IReadOnlyDictionary<string, Tensor> AdapterTensors() => _pair.Tensors();

    /// <inheritdoc />
    public void LoadAdapterTensors(IReadOnlyDictionary<string, Tensor> tensors) => AdapterTensorChecks.CopyInto(tensors, _pair.Tensors(), "DyLoRA layer");

    private int CheckRank(int b) =>
        b >= 1 && b <= Options.Rank ? b : throw new AdapterException($"DyLoRA rank {b} is outside [1, {Options.Rank}] (the adapter's r)");
}
