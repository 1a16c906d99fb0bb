using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Model;

/// <summary>
/// Builds the module behind one linear projection of a decoder block. This is the seam through which
/// a quantized base linear or an adapter wrapper takes the place of a plain <c>nn.Linear</c>: the model
/// calls it once per projection with the projection's Hugging Face module name, so a factory can
/// decide per module (for example: quantize <c>mlp.*</c>, keep <c>self_attn.o_proj</c> in bf16).
/// </summary>
/// <param name="hfName">Full Hugging Face module name, e.g. <c>model.layers.0.self_attn.q_proj</c>.</param>
/// <param name="inFeatures">Input width.</param>
/// <param name="outFeatures">Output width.</param>
/// <param name="bias">Whether the checkpoint carries <c>&lt;hfName&gt;.bias</c>.</param>
/// <returns>
/// A module mapping (…, inFeatures) to (…, outFeatures). If it exposes parameters named <c>weight</c>
/// (and <c>bias</c>) the loader copies the checkpoint tensors into them; otherwise it must implement
/// <see cref="ITensorLoadTarget"/>.
/// </returns>
public delegate nn.Module<Tensor, Tensor> LinearFactory(string hfName, long inFeatures, long outFeatures, bool bias);

/// <summary>Ready-made <see cref="LinearFactory"/> implementations.</summary>
public static class LinearFactories
{
    /// <summary>A plain <c>nn.Linear</c> with weights held in <paramref name="dtype"/> on <paramref name="device"/>.</summary>
    public static LinearFactory Plain(ScalarType dtype, Device? device = null) =>
        (_, inFeatures, outFeatures, bias) => nn.Linear(inFeatures, outFeatures, hasBias: bias, device: device, dtype: dtype);
}
