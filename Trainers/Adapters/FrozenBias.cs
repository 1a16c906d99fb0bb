using static TorchSharp.torch;
using QuantPeft.Quant.Torch;

namespace QuantPeft.Trainers.Adapters;

/// <summary>
/// The bias of a frozen quantized base (NF4/FP4 or LQ-LoRA): kept dense in the compute dtype, since it is tiny and
/// quantizing it would save nothing. Each such base owns one, which checks what the loader hands over, adds itself to
/// the bias-free output, counts its bytes and frees itself, so the bases differ only in how they store and apply W.
/// </summary>
internal sealed class FrozenBias(long outFeatures, Device device, ScalarType dtype) : IDisposable
{
    private Tensor? _value;

    /// <summary>The bias [out] in the compute dtype, or null when none was loaded.</summary>
    public Tensor? Value => _value;

    /// <summary>Bytes held (0 without a bias).</summary>
    public long Bytes => _value is null ? 0 : _value.numel() * _value.ElementSize;

    /// <summary>Replaces the bias with a detached copy of <paramref name="value"/> (the input is not kept or disposed).</summary>
    /// <exception cref="AdapterException">The bias is not a vector of out_features values.</exception>
    public void Load(Tensor value)
    {
        if (value.dim() != 1 || value.shape[0] != outFeatures)
            throw new AdapterException($"'bias': expected shape [{outFeatures}], found [{string.Join(", ", value.shape)}]");
        var copy = value.detach().to(device).to(dtype, copy: true).DetachFromDisposeScope();
        _value?.Dispose();
        _value = copy;
    }

    /// <summary><paramref name="forwardNoBias"/>(x) plus the bias (in the output's dtype), for the base's <c>forward</c>.</summary>
    public Tensor Forward(Tensor x, Func<Tensor, Tensor> forwardNoBias)
    {
        using var scope = NewDisposeScope();
        var y = forwardNoBias(x);
        if (_value is not null) y = y.Add(_value.to(y.dtype));
        return y.MoveToOuterDisposeScope();
    }

    /// <summary>Frees the bias.</summary>
    public void Dispose()
    {
        _value?.Dispose();
        _value = null;
    }
}
