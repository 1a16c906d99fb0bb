using System.Text.RegularExpressions;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Pruning;

/// <summary>
/// LoRAM recovery: an adapter trained on the pruned model, expanded to the unpruned model's shapes with the trained
/// values at the kept indices and zeros at the pruned ones (the scripts' default <c>zeroA</c>). Only the factor that
/// touches a pruned dimension changes: <c>lora_B</c> rows of q/k/v/gate/up and Phi-3's fused qkv/gate_up (their outputs were pruned) and
/// <c>lora_A</c> columns of o/down (their inputs were pruned). So on the unpruned model ΔW = s·B·A equals the pruned
/// ΔW on the kept rows and columns and is exactly zero elsewhere: a pruned unit gets no update.
/// </summary>
public static partial class AdapterRecovery
{
    /// <summary>
    /// The recovered copy of adapter tensor <paramref name="key"/> (<c>lora_A.weight</c> or <c>lora_B.weight</c>) of
    /// the projection at <paramref name="modulePath"/> (e.g. <c>model.layers.5.mlp.down_proj</c>), or null when its
    /// shape does not change (an unpruned block, or the factor along the hidden dimension). The caller owns the copy.
    /// </summary>
    /// <exception cref="PruningException">A tensor of a pruned projection that is neither <c>lora_A</c> nor <c>lora_B</c> (nothing else can be recovered).</exception>
    public static Tensor? Expand(PruningPlan plan, string modulePath, string key, Tensor value)
    {
        var match = Projection().Match(modulePath);
        if (!match.Success) return null;
        int layer = int.Parse(match.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        if (layer >= plan.Layers.Count || !plan.Layers[layer].Pruned) return null;
        string projection = match.Groups[2].Value;
        bool outputPruned = projection is not ("o_proj" or "down_proj");
        if (key is not ("lora_A.weight" or "lora_B.weight"))
            throw new PruningException($"{modulePath}.{key}: LoRAM recovers only lora_A and lora_B of a pruned projection");
        // B [out, r] carries the output dimension, A [r, in] the input one; the other factor spans the hidden size.
        if (outputPruned != (key == "lora_B.weight")) return null;
        long[] kept = projection switch
        {
            "q_proj" or "o_proj" => plan.KeptQueryRows(layer),
            "k_proj" or "v_proj" => plan.KeptKvRows(layer),
            "qkv_proj" => plan.KeptQkvRows(layer),
            "gate_up_proj" => plan.KeptGateUpRows(layer),
            _ => plan.KeptChannels(layer),
        };
        long full = projection switch
        {
            "q_proj" or "o_proj" => (long)plan.Spec.NumHeads * plan.Spec.HeadDim,
            "k_proj" or "v_proj" => (long)plan.Spec.NumKvHeads * plan.Spec.HeadDim,
            "qkv_proj" => (long)(plan.Spec.NumHeads + 2 * plan.Spec.NumKvHeads) * plan.Spec.HeadDim,
            "gate_up_proj" => 2L * plan.Spec.IntermediateSize,
            _ => plan.Spec.IntermediateSize,
        };
        int dim = outputPruned ? 0 : 1;
        if (value.shape[dim] != kept.Length)
            throw new PruningException($"{modulePath}.{key}: expected {kept.Length} entries along dimension {dim} (the kept units of block {layer}), found {value.shape[dim]}");
        var shape = value.shape.ToArray();
        shape[dim] = full;
        using var scope = NewDisposeScope();
        using var index = tensor(kept, device: value.device);
        var recovered = zeros(shape, value.dtype, value.device).index_copy_(dim, index, value.detach());
        return recovered.MoveToOuterDisposeScope();
    }

    [GeneratedRegex(@"^model\.layers\.(\d+)\.(?:self_attn|mlp)\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj|qkv_proj|gate_up_proj)$")]
    private static partial Regex Projection();
}
