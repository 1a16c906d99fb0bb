using static TorchSharp.torch;

namespace QuantPeft.Trainers.Adapters;

/// <summary>
/// The bias of a frozen quantized base (NF4/FP4 or LQ-LoRA): kept dense in the compute dtype, since it is tiny and
/// quantizing it would save nothing. One copy of the checks both bases apply when the loader hands it over.
/// </summary>
internal static class FrozenBias
{
    /// <summary>A detached copy of <paramref name="value"/> on <paramref name="device"/> in <paramref name="dtype"/>, owned by the caller.</summary>
    /// <exception cref="AdapterException">The bias is not a vector of <paramref name="outFeatures"/> values.</exception>
    public static Tensor Load(Tensor value, long outFeatures, Device device, ScalarType dtype)
    {
        if (value.dim() != 1 || value.shape[0] != outFeatures)
            throw new AdapterException($"'bias': expected shape [{outFeatures}], found [{string.Join(", ", value.shape)}]");
        return value.detach().to(device).to(dtype, copy: true).DetachFromDisposeScope();
    }
}
