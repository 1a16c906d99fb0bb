using QuantPeft.Quant.Torch;
using QuantPeft.Trainers.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Adapters;

/// <summary>How the frozen projections of a decoder are stored while adapters train.</summary>
public enum BaseWeightFormat
{
    /// <summary>4-bit NormalFloat (QLoRA).</summary>
    Nf4,

    /// <summary>4-bit float (bitsandbytes FP4).</summary>
    Fp4,

    /// <summary>Dense bf16 (plain LoRA).</summary>
    Bf16,
}

/// <summary>
/// The <see cref="LinearFactory"/> that gives every q/k/v/o and gate/up/down projection a frozen base:
/// 4-bit bases quantize their checkpoint tensor on load, so only the codes stay resident. Embeddings, norms
/// and the LM head are not projections of a block and stay in the compute dtype.
/// </summary>
public static class BaseWeights
{
    /// <summary>The factory for <paramref name="format"/>.</summary>
    /// <param name="format">Storage of the projection weights.</param>
    /// <param name="doubleQuant">Double quantization of the 4-bit block scales (ignored for bf16).</param>
    /// <param name="computeDType">Dtype of activations and of dense bases.</param>
    /// <param name="device">Device for the bases; null means the CPU.</param>
    public static LinearFactory Factory(BaseWeightFormat format, bool doubleQuant, ScalarType computeDType, Device? device = null) =>
        (_, inFeatures, outFeatures, bias) => format switch
        {
            BaseWeightFormat.Bf16 => new DenseLinear(
                zeros([outFeatures, inFeatures], computeDType, device),
                bias ? zeros([outFeatures], computeDType, device) : null),
            _ => new QuantizedBaseLinear(inFeatures, outFeatures,
                format == BaseWeightFormat.Nf4 ? FourBitFormat.Nf4 : FourBitFormat.Fp4, doubleQuant, computeDType, device),
        };

    /// <summary>Parses <c>nf4</c>, <c>fp4</c> or <c>bf16</c>.</summary>
    /// <exception cref="AdapterException">Any other value; the message names <paramref name="flag"/>.</exception>
    public static BaseWeightFormat Parse(string value, string flag = "--weights") => value.Trim().ToLowerInvariant() switch
    {
        "nf4" => BaseWeightFormat.Nf4,
        "fp4" => BaseWeightFormat.Fp4,
        "bf16" => BaseWeightFormat.Bf16,
        _ => throw new AdapterException($"{flag}: expected nf4, fp4 or bf16, found '{value}'"),
    };
}
