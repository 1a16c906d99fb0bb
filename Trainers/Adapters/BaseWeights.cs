using QuantPeft.Memory.Planning;
using QuantPeft.Quant.Codecs;
using QuantPeft.Quant.Torch;
using QuantPeft.Trainers.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Adapters;

/// <summary>
/// The <see cref="LinearFactory"/> that gives every q/k/v/o and gate/up/down projection a frozen base:
/// 4-bit bases quantize their checkpoint tensor on load, so only the codes stay resident. Embeddings, norms
/// and the LM head are not projections of a block and stay in the compute dtype.
/// </summary>
public static class BaseWeights
{
    /// <summary>The factory for <paramref name="format"/>.</summary>
    /// <param name="format">Storage of the projection weights: <see cref="WeightFormat.Nf4"/>, <see cref="WeightFormat.Fp4"/> or <see cref="WeightFormat.Bf16"/>.</param>
    /// <param name="doubleQuant">Double quantization of the 4-bit block scales (ignored for bf16).</param>
    /// <param name="computeDType">Dtype of activations and of dense bases.</param>
    /// <param name="device">Device for the bases; null means the CPU.</param>
    /// <exception cref="AdapterException"><paramref name="format"/> is int8 or LQ-LoRA, which are not built projection by projection on load.</exception>
    public static LinearFactory Factory(WeightFormat format, bool doubleQuant, ScalarType computeDType, Device? device = null)
    {
        if (format is not (WeightFormat.Bf16 or WeightFormat.Nf4 or WeightFormat.Fp4))
            throw new AdapterException($"--weights {Knob.Name(format)}: the bases built on load are nf4, fp4 or bf16");
        return (_, inFeatures, outFeatures, bias) => format == WeightFormat.Bf16
            ? new DenseLinear(
                zeros([outFeatures, inFeatures], computeDType, device),
                bias ? zeros([outFeatures], computeDType, device) : null)
            : new QuantizedBaseLinear(inFeatures, outFeatures, format == WeightFormat.Nf4 ? FourBitType.Nf4 : FourBitType.Fp4,
                doubleQuant, computeDType, device);
    }

    /// <summary>Parses <c>nf4</c>, <c>fp4</c> or <c>bf16</c>: the formats <see cref="Factory"/> builds.</summary>
    /// <exception cref="AdapterException">Any other value; the message names <paramref name="flag"/>.</exception>
    public static WeightFormat Parse(string value, string flag = "--weights") => value.Trim().ToLowerInvariant() switch
    {
        "nf4" => WeightFormat.Nf4,
        "fp4" => WeightFormat.Fp4,
        "bf16" => WeightFormat.Bf16,
        _ => throw new AdapterException($"{flag}: expected nf4, fp4 or bf16, found '{value}'"),
    };
}
