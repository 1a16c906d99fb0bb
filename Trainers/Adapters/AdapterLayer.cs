using static TorchSharp.torch;

namespace QuantPeft.Trainers.Adapters;

/// <summary>
/// The module every adapter layer derives from. What all methods share (the frozen projection it adapts, whether its
/// update is merged into that projection, whether it is switched on) is answered here from the layer's
/// <see cref="AdapterLayerState"/>, so a method's layer holds only its own update, merge rule and tensors and declares
/// <see cref="IAdapterLayer"/> for the rest.
/// </summary>
public abstract class AdapterLayer : nn.Module<Tensor, Tensor>
{
    /// <summary>Creates the module under <paramref name="name"/>.</summary>
    protected AdapterLayer(string name) : base(name)
    {
    }

    /// <summary>The layer's base, checks and merged and enabled switches.</summary>
    private protected abstract AdapterLayerState State { get; }

    /// <inheritdoc cref="IAdapterLayer.BaseLayer"/>
    public IBaseLinear BaseLayer => State.Base;

    /// <inheritdoc cref="IAdapterLayer.Enabled"/>
    public bool Enabled
    {
        get => State.Enabled;
        set => State.Enabled = value;
    }

    /// <inheritdoc cref="IAdapterLayer.Merged"/>
    public bool Merged => State.Merged;
}
