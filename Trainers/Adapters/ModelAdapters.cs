using QuantPeft.Trainers.Model;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Adapters;

/// <summary>Adapter methods that <see cref="ModelAdapters.Attach"/> can put on a decoder.</summary>
public enum AdapterMethod
{
    /// <summary>LoRA: B = 0, A kaiming-uniform; the base is untouched.</summary>
    Lora,

    /// <summary>DoRA: LoRA on the direction plus a trained magnitude vector.</summary>
    Dora,
}

/// <summary>One attached adapter: its Hugging Face module path and the layer.</summary>
/// <param name="ModulePath">e.g. <c>model.layers.0.self_attn.q_proj</c> (the PEFT key stem).</param>
/// <param name="Layer">The adapter wrapping that projection.</param>
public sealed record AttachedAdapter(string ModulePath, IAdapterLayer Layer);

/// <summary>
/// Puts adapters on the projections of a loaded <see cref="CausalLm"/> and freezes everything else. Targets
/// use PEFT's short names (<c>q_proj</c>, …) or the short forms <c>q,k,v,o,gate,up,down</c>, or <c>all-linear</c>.
/// </summary>
public static class ModelAdapters
{
    /// <summary>The seven decoder projections, in block order.</summary>
    public static IReadOnlyList<string> AllLinear { get; } = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"];

    /// <summary>
    /// Resolves a target list such as <c>q,v</c>, <c>q_proj,v_proj</c> or <c>all-linear</c> to projection names.
    /// </summary>
    /// <exception cref="AdapterException">A target that is not one of the decoder's projections; the message names it.</exception>
    public static IReadOnlyList<string> ResolveTargets(IEnumerable<string> targets)
    {
        var result = new List<string>();
        foreach (var raw in targets.SelectMany(t => t.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)))
        {
            if (raw is "all-linear" or "all_linear")
            {
                result.AddRange(AllLinear);
                continue;
            }
            string name = raw.EndsWith("_proj", StringComparison.Ordinal) ? raw : raw + "_proj";
            if (!AllLinear.Contains(name))
                throw new AdapterException($"target module '{raw}' does not exist in the decoder; expected some of {string.Join(", ", AllLinear)} or all-linear");
            result.Add(name);
        }
        if (result.Count == 0) throw new AdapterException("no target modules given; expected some of q,k,v,o,gate,up,down or all-linear");
        return result.Distinct().ToList();
    }

    /// <summary>
    /// Wraps every target projection of every block with a fresh adapter, then freezes every parameter of
    /// the model except the adapters' own. Call after the base weights are loaded (DoRA reads them).
    /// </summary>
    /// <param name="model">A loaded model whose projections implement <see cref="IBaseLinear"/>.</param>
    /// <param name="method">LoRA or DoRA.</param>
    /// <param name="options">Rank, α, dropout.</param>
    /// <param name="targets">Projection names from <see cref="ResolveTargets"/>.</param>
    /// <param name="seed">Seeds the A initialisation so a run is reproducible.</param>
    /// <returns>The adapters in model order.</returns>
    public static IReadOnlyList<AttachedAdapter> Attach(CausalLm model, AdapterMethod method, LoraOptions options, IReadOnlyList<string> targets, long seed)
    {
        torch.manual_seed(seed);
        var attached = new List<AttachedAdapter>();
        foreach (var layer in model.Layers)
        {
            foreach (var name in targets)
            {
                bool attention = name is "q_proj" or "k_proj" or "v_proj" or "o_proj";
                string path = $"model.layers.{layer.Index}.{(attention ? "self_attn" : "mlp")}.{name}";
                var current = attention ? layer.SelfAttn.GetProjection(name) : layer.Mlp.GetProjection(name);
                if (current is not IBaseLinear)
                    throw new AdapterException($"'{path}' is a {current.GetType().Name}, not a frozen base linear; build the model with {nameof(BaseWeights)}.{nameof(BaseWeights.Factory)}");
                nn.Module<Tensor, Tensor> wrapped = method switch
                {
                    AdapterMethod.Dora => new DoraLinear(current, options),
                    _ => new LoraLinear(current, options),
                };
                if (attention) layer.SelfAttn.ReplaceProjection(name, wrapped);
                else layer.Mlp.ReplaceProjection(name, wrapped);
                attached.Add(new AttachedAdapter(path, (IAdapterLayer)wrapped));
            }
        }
        Freeze(model, attached);
        return attached;
    }

    /// <summary>The trainable parameters (the adapters' tensors) with unique names, e.g. <c>model.layers.0.self_attn.q_proj.lora_A.weight</c>.</summary>
    public static IReadOnlyList<(string Name, Parameter Param)> TrainableParameters(IReadOnlyList<AttachedAdapter> adapters) =>
        adapters.SelectMany(a => a.Layer.AdapterTensors().Select(kv => ($"{a.ModulePath}.{kv.Key}", (Parameter)kv.Value))).ToList();

    /// <summary>Sum of the adapters' trainable scalars.</summary>
    public static long TrainableCount(IReadOnlyList<AttachedAdapter> adapters) => adapters.Sum(a => a.Layer.TrainableParameterCount);

    private static void Freeze(CausalLm model, IReadOnlyList<AttachedAdapter> adapters)
    {
        var trainable = adapters.SelectMany(a => a.Layer.AdapterTensors().Values).Select(t => t.Handle).ToHashSet();
        foreach (var (_, p) in model.named_parameters())
            p.requires_grad = trainable.Contains(p.Handle);
    }
}
