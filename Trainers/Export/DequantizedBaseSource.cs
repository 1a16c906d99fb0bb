using QuantPeft.Quant.Codecs;
using QuantPeft.Quant.Torch;
using QuantPeft.Trainers.Adapters;
using QuantPeft.Trainers.Model;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Export;

/// <summary>
/// <c>--merge-onto dequantized</c>: the checkpoint as a 4-bit QLoRA run saw it. Each decoder projection weight is quantized
/// by the same frozen base training used (<see cref="QuantizedBaseLinear"/>: NF4 or FP4, blocks of 64, optional double
/// quantization, from bf16) and handed on dequantized to bf16, so the adapter is merged into the weights it was trained
/// against rather than into the original ones. Embeddings, norms and the LM head pass unchanged, as training keeps them.
/// </summary>
internal sealed class DequantizedBaseSource(ITensorSource inner, FourBitType format, bool doubleQuant) : ITensorSource
{
    public string Origin => inner.Origin;

    public IEnumerable<string> Names => inner.Names;

    public Tensor Get(string name)
    {
        var value = inner.Get(name);
        if (value.dim() != 2 || !name.Contains(".layers.", StringComparison.Ordinal) || !name.EndsWith("_proj.weight", StringComparison.Ordinal))
            return value;
        using (value)
        using (var quantized = new QuantizedBaseLinear(value.shape[1], value.shape[0], format, doubleQuant, ScalarType.BFloat16))
        {
            quantized.SetWeight(value, name);
            return quantized.DenseWeight(ScalarType.BFloat16);
        }
    }
}
