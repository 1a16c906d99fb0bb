using TorchSharp;
using TorchSharp.Utils;
using TorchSharp.Modules;
using static TorchSharp.torch;
using QuantPeft.Quant.Torch;

namespace QuantPeft.Trainers.Adapters;

/// <summary>
/// Bone (block affine, PEFT's <c>BONE</c>): one trained block <c>bone_block</c> [r, out] (init 0) is added to every r-column
/// block of W, so ΔW[o, c] = bone_block[c mod r, o] (a last partial block takes the block's leading rows). The forward
/// never forms ΔW: <c>y = base(x) + (Σ_j x_j) · bone_block</c>, where x_j are the r-wide column blocks of x, zero-padded.
/// r·d_out values are trained per layer; its update is full rank in the output dimension and shared across column blocks.
/// </summary>
public sealed class BoneLinear : AdapterLayer, IAdapterLayer
{
    [ComponentName(Name = "base_layer")]
    private readonly nn.Module<Tensor, Tensor> _base;

    [ComponentName(Name = "bone_block")]
    private readonly Parameter _block;

    private readonly AdapterLayerState _state;
    private readonly int _rank;

    /// <summary>Wraps <paramref name="baseLayer"/> with a zero block, so the layer starts as its base.</summary>
    /// <param name="baseLayer">A frozen projection implementing <see cref="IBaseLinear"/>.</param>
    /// <param name="rank">r: the block's width in input columns, at most min(in, out).</param>
    /// <param name="dtype">Dtype of the block.</param>
    /// <exception cref="AdapterException">The base is not an <see cref="IBaseLinear"/>, or r is not in [1, min(in, out)].</exception>
    public BoneLinear(nn.Module<Tensor, Tensor> baseLayer, int rank, ScalarType dtype = ScalarType.Float32) : base(nameof(BoneLinear))
    {
        _state = new AdapterLayerState(baseLayer, "Bone", rank);
        if (rank <= 0) throw new AdapterException($"Bone rank must be positive, got {rank}");
        _base = baseLayer;
        _rank = rank;
        _block = new Parameter(torch.zeros(rank, _state.Base.OutFeatures, dtype: dtype, device: _state.Base.Device), requires_grad: true);
        RegisterComponents();
    }

    /// <summary>The trained block [r, out].</summary>
    public Tensor Block => _block;

    private protected override AdapterLayerState State => _state;

    /// <inheritdoc />
    public long TrainableParameterCount => _block.numel();

    /// <inheritdoc />
    public override Tensor forward(Tensor x)
    {
        if (_state.Bypassed) return _base.forward(x);
        using var scope = torch.NewDisposeScope();
        var summed = BlockSum(x.to(_block.dtype), _rank);
        var y = _base.forward(x);
        return y.Add(summed.matmul(_block).to(y.dtype)).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Σ_j x_j over the r-wide column blocks of the last dimension of <paramref name="x"/> [..., in]: [..., r]; a last partial
    /// block adds into the leading entries, as if zero-padded.
    /// </summary>
    public static Tensor BlockSum(Tensor x, int rank)
    {
        long inFeatures = x.shape[^1];
        long whole = inFeatures / rank, last = inFeatures % rank;
        long[] lead = x.shape[..^1];
        using var scope = torch.NewDisposeScope();
        var sum = whole > 0
            ? x.narrow(-1, 0, whole * rank).reshape([.. lead, whole, rank]).sum(-2)
            : torch.zeros([.. lead, rank], dtype: x.dtype, device: x.device);
        if (last > 0)
        {
            var tail = torch.cat([x.narrow(-1, whole * rank, last), torch.zeros([.. lead, rank - last], dtype: x.dtype, device: x.device)], -1);
            sum = sum.Add(tail);
        }
        return sum.MoveToOuterDisposeScope();
    }

    /// <summary>ΔW [out, in] of <paramref name="block"/> [r, out] on a weight of <paramref name="inFeatures"/> columns, in f32: ΔW[o, c] = block[c mod r, o].</summary>
    public static Tensor Delta(Tensor block, long inFeatures)
    {
        long rank = block.shape[0];
        using var scope = torch.NewDisposeScope();
        var t = block.detach().to(ScalarType.Float32).t();
        var tiled = t.repeat(1, (inFeatures + rank - 1) / rank).narrow(1, 0, inFeatures).contiguous();
        return tiled.MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    public void Merge() => _state.Merge(() =>
    {
        using var d = Delta(_block, _state.Base.InFeatures);
        _state.Base.AddToWeight(d);
    }, "cannot merge a Bone adapter into a quantized base; export a merged model from the dense weights instead");

    /// <inheritdoc />
    public void Unmerge() => _state.Unmerge(() =>
    {
        using var d = Delta(_block, _state.Base.InFeatures).neg_();
        _state.Base.AddToWeight(d);
    });

    /// <inheritdoc />
    public IReadOnlyDictionary<string, Tensor> AdapterTensors() => new Dictionary<string, Tensor> { ["bone_block"] = _block };

    /// <inheritdoc />
    public void LoadAdapterTensors(IReadOnlyDictionary<string, Tensor> tensors) => AdapterTensorChecks.CopyInto(tensors, AdapterTensors(), "Bone layer");
}
