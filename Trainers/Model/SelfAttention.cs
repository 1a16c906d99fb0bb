using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.Utils;
using static TorchSharp.torch;
using QuantPeft.Quant.Torch;

namespace QuantPeft.Trainers.Model;

/// <summary>
/// Causal grouped-query self-attention (<c>self_attn</c> in Hugging Face checkpoints): q/k/v/o
/// projections built by the <see cref="LinearFactory"/>, rotary embeddings on q and k, and each of
/// the NumKvHeads key/value heads shared by NumHeads/NumKvHeads query heads. Phi-3 has one fused <c>qkv_proj</c> instead
/// of q/k/v, whose output columns are split into q, k and v (in that order) before the heads are formed.
/// </summary>
public sealed class SelfAttention : nn.Module<Tensor, Tensor, Tensor, Tensor>
{
    [ComponentName(Name = "q_proj")] private nn.Module<Tensor, Tensor>? _qProj;
    [ComponentName(Name = "k_proj")] private nn.Module<Tensor, Tensor>? _kProj;
    [ComponentName(Name = "v_proj")] private nn.Module<Tensor, Tensor>? _vProj;
    [ComponentName(Name = "qkv_proj")] private nn.Module<Tensor, Tensor>? _qkvProj;
    [ComponentName(Name = "o_proj")] private nn.Module<Tensor, Tensor> _oProj;
    [ComponentName(Name = "q_norm")] private readonly RmsNorm? _qNorm;
    [ComponentName(Name = "k_norm")] private readonly RmsNorm? _kNorm;
    private readonly long _numHeads, _numKvHeads, _headDim;
    private readonly LayerAttention _attention;

    /// <summary>
    /// Creates the block's attention; <paramref name="prefix"/> is e.g. <c>model.layers.3.self_attn</c>. <paramref name="attention"/>
    /// gives the window, scale, soft-cap and q/k norms (null: plain causal attention scaled by 1/√D); the q/k norm weights are
    /// made in <paramref name="dtype"/> on <paramref name="device"/>. <paramref name="fusedQkv"/> builds Phi-3's single <c>qkv_proj</c>.
    /// </summary>
    public SelfAttention(string prefix, long hidden, long numHeads, long numKvHeads, long headDim,
        bool qkvBias, bool outputBias, LinearFactory linear,
        LayerAttention? attention = null, ScalarType dtype = ScalarType.Float32, Device? device = null, bool fusedQkv = false) : base(nameof(SelfAttention))
    {
        _numHeads = numHeads;
        _numKvHeads = numKvHeads;
        _headDim = headDim;
        _attention = attention ?? LayerAttention.Plain(headDim);
        if (fusedQkv)
        {
            _qkvProj = linear($"{prefix}.qkv_proj", hidden, (numHeads + 2 * numKvHeads) * headDim, qkvBias);
        }
        else
        {
            _qProj = linear($"{prefix}.q_proj", hidden, numHeads * headDim, qkvBias);
            _kProj = linear($"{prefix}.k_proj", hidden, numKvHeads * headDim, qkvBias);
            _vProj = linear($"{prefix}.v_proj", hidden, numKvHeads * headDim, qkvBias);
        }
        _oProj = linear($"{prefix}.o_proj", numHeads * headDim, hidden, outputBias);
        if (_attention.QkNorm)
        {
            _qNorm = new RmsNorm(headDim, _attention.NormEps, dtype, device, _attention.UnitOffsetNorm);
            _kNorm = new RmsNorm(headDim, _attention.NormEps, dtype, device, _attention.UnitOffsetNorm);
        }
        RegisterComponents();
    }

    /// <summary>The window, scale, soft-cap and q/k norms of this block.</summary>
    public LayerAttention Settings => _attention;

    /// <summary>Kernel used by <see cref="forward"/>; can change between steps.</summary>
    public AttentionImplementation Implementation { get; set; } = AttentionImplementation.Fused;

    /// <summary>x (B, T, H), cos/sin (T, D) or per row (B, 1, T, D) → (B, T, H).</summary>
    public override Tensor forward(Tensor x, Tensor cos, Tensor sin)
    {
        using var scope = NewDisposeScope();
        long b = x.shape[0], t = x.shape[1];
        var (qOut, kOut, vOut) = Project(x);
        var q = qOut.view(b, t, _numHeads, _headDim);                               // (B, T, nH, D)
        var k = kOut.view(b, t, _numKvHeads, _headDim);                             // (B, T, nKv, D)
        if (_qNorm is not null) q = _qNorm.call(q);                                 // per head, over D
        if (_kNorm is not null) k = _kNorm.call(k);
        q = q.transpose(1, 2);                                                      // (B, nH, T, D)
        k = k.transpose(1, 2);                                                      // (B, nKv, T, D)
        var v = vOut.view(b, t, _numKvHeads, _headDim).transpose(1, 2);             // (B, nKv, T, D)
        q = RotaryEmbedding.Apply(q, cos, sin);
        k = RotaryEmbedding.Apply(k, cos, sin);
        if (Cache is KvCache.Slot slot) (k, v) = slot.Append(k, v);                 // (B, nKv, past + T, D)
        k = RepeatKv(k);                                                            // (B, nH, S, D)
        v = RepeatKv(v);
        // libtorch's fused kernel cannot soft-cap scores; Gemma 2 takes the eager path whatever was asked.
        var attended = Implementation == AttentionImplementation.Fused && _attention.Softcap is null
            ? FusedAttention(q, k, v)
            : EagerAttention(q, k, v);                                              // (B, nH, T, D)
        var merged = attended.transpose(1, 2).reshape(b, t, _numHeads * _headDim);  // (B, T, nH·D)
        return _oProj.call(merged).MoveToOuterDisposeScope();
    }

    /// <summary>x (B, T, H) → q (B, T, nH·D), k and v (B, T, nKv·D): three projections, or the columns of the fused one.</summary>
    private (Tensor Q, Tensor K, Tensor V) Project(Tensor x)
    {
        if (_qkvProj is null)
            return (_qProj!.call(x), _kProj!.call(x), _vProj!.call(x));
        var qkv = _qkvProj.call(x);                                                 // (B, T, (nH + 2·nKv)·D)
        long qWidth = _numHeads * _headDim, kvWidth = _numKvHeads * _headDim;
        // view() needs contiguous rows; the narrowed columns are copied once here.
        return (qkv.narrow(-1, 0, qWidth).contiguous(), qkv.narrow(-1, qWidth, kvWidth).contiguous(),
            qkv.narrow(-1, qWidth + kvWidth, kvWidth).contiguous());
    }

    /// <summary>(B, nKv, T, D) → (B, nKv·g, T, D), each kv head repeated for its g query heads (HF's repeat_kv).</summary>
    private Tensor RepeatKv(Tensor kv)
    {
        long group = _numHeads / _numKvHeads;
        if (group == 1) return kv;
        long b = kv.shape[0], t = kv.shape[2];
        return kv.unsqueeze(2).expand(b, _numKvHeads, group, t, _headDim).reshape(b, _numHeads, t, _headDim);
    }

    /// <summary>Generation's cache of keys and values (<see cref="KvCache"/>), set for the duration of a cached forward.</summary>
    internal KvCache.Slot? Cache { get; set; }

    /// <summary>The examples packed in each row (<see cref="PackedSegments"/>), set for the duration of a packed forward and its recomputation.</summary>
    internal PackedSegments? Segments { get; set; }

    private Tensor FusedAttention(Tensor q, Tensor k, Tensor v)
    {
        long t = q.shape[2], s = k.shape[2];
        // The kernel scales by 1/√D; any other scale is folded into q.
        double rescale = _attention.Scale * Math.Sqrt(_headDim);
        if (Math.Abs(rescale - 1.0) > 1e-12) q = q.Mul(rescale);
        if (Segments is { } packed)
            return nn.functional.scaled_dot_product_attention(q, k, v, attn_mask: packed.AdditiveMask(_attention.Window, q.dtype));
        if (!AttentionMask.NeedsExplicitMask(t, s, _attention.Window))
            return nn.functional.scaled_dot_product_attention(q, k, v, is_casual: true);
        using var allowed = AttentionMask.Allowed(t, s, _attention.Window, q.device);
        return nn.functional.scaled_dot_product_attention(q, k, v, attn_mask: allowed);
    }

    private Tensor EagerAttention(Tensor q, Tensor k, Tensor v)
    {
        long t = q.shape[2];
        var scores = matmul(q, k.transpose(2, 3)).MulInPlace(_attention.Scale);          // (B, nH, T, S)
        if (_attention.Softcap is { } cap)
            scores = Softcap.Apply(scores, cap);
        if (Segments is { } packed)
        {
            var packedProbs = scores.Add(packed.AdditiveMask(_attention.Window, scores.dtype)).softmax(-1, ScalarType.Float32).to_type(q.dtype);
            return matmul(packedProbs, v);
        }
        using var allowed = AttentionMask.Allowed(t, k.shape[2], _attention.Window, q.device);
        using var blocked = allowed.logical_not();
        var masked = scores.MaskedFill(blocked, double.NegativeInfinity);
        var probs = masked.softmax(-1, ScalarType.Float32).to_type(q.dtype);
        return matmul(probs, v);
    }

    /// <summary>The projection registered under <paramref name="name"/> (<c>q_proj</c>, <c>k_proj</c>, <c>v_proj</c>, <c>o_proj</c>; Phi-3: <c>qkv_proj</c>, <c>o_proj</c>).</summary>
    public nn.Module<Tensor, Tensor> GetProjection(string name) => name switch
    {
        "q_proj" when _qProj is not null => _qProj,
        "k_proj" when _kProj is not null => _kProj,
        "v_proj" when _vProj is not null => _vProj,
        "qkv_proj" when _qkvProj is not null => _qkvProj,
        "o_proj" => _oProj,
        _ => throw new ArgumentException($"self_attn has no projection '{name}' (expected {(_qkvProj is null ? "q_proj, k_proj, v_proj" : "qkv_proj")} or o_proj)", nameof(name)),
    };

    /// <summary>Puts <paramref name="module"/> in place of the projection <paramref name="name"/>; the old one is returned, not disposed.</summary>
    public nn.Module<Tensor, Tensor> ReplaceProjection(string name, nn.Module<Tensor, Tensor> module)
    {
        var old = GetProjection(name);
        switch (name)
        {
            case "q_proj": _qProj = module; break;
            case "k_proj": _kProj = module; break;
            case "v_proj": _vProj = module; break;
            case "qkv_proj": _qkvProj = module; break;
            default: _oProj = module; break;
        }
        ProjectionSlots.Reregister(this, name, module, register_module, _internal_submodules.clear);
        return old;
    }
}
