using static TorchSharp.torch;

namespace QuantPeft.Trainers.Adapters;

/// <summary>
/// What every adapter layer shares, written once: its base seen as an <see cref="IBaseLinear"/>, the checks made when
/// it is wrapped (the base, the rank, the dropout), and the merged and enabled switches that decide whether forward
/// adds the update. A layer keeps one as a plain field (not a module, so its state dict is unchanged).
/// </summary>
public sealed class AdapterLayerState
{
    private bool _enabled = true;

    /// <summary>Checks <paramref name="baseLayer"/> for a layer of <paramref name="method"/>.</summary>
    /// <param name="baseLayer">The frozen projection the layer wraps.</param>
    /// <param name="method">The method's display name in messages, e.g. <c>LoRA</c>.</param>
    /// <param name="rank">The rank a factorisation of the weight needs (at most min(in, out)); null when the rank is not bounded by the weight.</param>
    /// <param name="dropout">The dropout probability, checked to lie in [0, 1); null when the options checked it.</param>
    /// <exception cref="AdapterException">The base is not an <see cref="IBaseLinear"/>, the rank exceeds min(in, out), or the dropout is out of range.</exception>
    public AdapterLayerState(nn.Module<Tensor, Tensor> baseLayer, string method, int? rank = null, double? dropout = null)
    {
        Base = baseLayer as IBaseLinear ?? throw new AdapterException($"{method} needs a base implementing {nameof(IBaseLinear)}, got {baseLayer.GetType().Name}");
        if (rank is int r && r > Math.Min(Base.InFeatures, Base.OutFeatures))
            throw new AdapterException($"{method} rank {r} exceeds min(in, out) = {Math.Min(Base.InFeatures, Base.OutFeatures)}");
        if (dropout is double p && !(p >= 0 && p < 1)) throw new AdapterException($"{method} dropout must be in [0, 1), got {p}");
    }

    /// <summary>The wrapped frozen projection.</summary>
    public IBaseLinear Base { get; }

    /// <summary>Whether the update is folded into the base weight.</summary>
    public bool Merged { get; private set; }

    /// <summary>Whether forward adds the update; a merged adapter cannot be turned off.</summary>
    /// <exception cref="AdapterException">Turning off a merged adapter.</exception>
    public bool Enabled
    {
        get => _enabled;
        set => _enabled = value || !Merged ? value : throw new AdapterException("cannot turn off a merged adapter; unmerge it first");
    }

    /// <summary>Whether forward computes the base alone (the update is merged into it, or turned off).</summary>
    public bool Bypassed => Merged || !_enabled;

    /// <summary>Folds the update into the base once: <paramref name="fold"/> adds it to the base weight.</summary>
    /// <param name="fold">Adds the update to <see cref="Base"/>'s weight.</param>
    /// <param name="refusal">The message when the base cannot take it (a quantized base).</param>
    /// <exception cref="AdapterException">The base does not support merging.</exception>
    public void Merge(Action fold, string refusal)
    {
        if (Merged) return;
        if (!Base.SupportsMerge) throw new AdapterException(refusal);
        fold();
        Merged = true;
    }

    /// <summary>Removes a merged update once: <paramref name="unfold"/> subtracts it from the base weight.</summary>
    public void Unmerge(Action unfold)
    {
        if (!Merged) return;
        unfold();
        Merged = false;
    }
}
