using QuantPeft.Formats.HuggingFace;
using QuantPeft.Memory.Planning;
using QuantPeft.Trainers.Adapters.Methods;
using QuantPeft.Trainers.Model;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Adapters;

/// <summary>One attached adapter: its Hugging Face module path and the layer.</summary>
/// <param name="ModulePath">e.g. <c>model.layers.0.self_attn.q_proj</c> (the PEFT key stem).</param>
/// <param name="Layer">The adapter wrapping that projection.</param>
public sealed record AttachedAdapter(string ModulePath, IAdapterLayer Layer)
{
    /// <summary>
    /// The initial values of the adapter tensors that the residual base was built from, by the names of
    /// <see cref="IAdapterLayer.AdapterTensors"/> (PiSSA: <c>lora_A.weight</c>, <c>lora_B.weight</c>; OSoRA: <c>osora_S</c>),
    /// kept (f32, owned by whoever owns the adapters) to export the adapter relative to the original W; null for the other methods.
    /// </summary>
    public IReadOnlyDictionary<string, Tensor>? Initial { get; init; }
}

/// <summary>
/// Puts adapters on the projections of a loaded <see cref="CausalLm"/> and freezes everything else. Targets
/// use PEFT's short names (<c>q_proj</c>, …) or the short forms <c>q,k,v,o,gate,up,down</c>, or <c>all-linear</c>.
/// </summary>
public static class ModelAdapters
{
    /// <summary>The seven decoder projections, in block order.</summary>
    public static IReadOnlyList<string> AllLinear { get; } = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"];

    /// <summary>The four projections of a Phi-3 block (fused q/k/v and gate/up), in block order; PEFT's targets for Phi-3.</summary>
    public static IReadOnlyList<string> FusedAllLinear { get; } = ["qkv_proj", "o_proj", "gate_up_proj", "down_proj"];

    /// <summary>Whether <paramref name="name"/> (e.g. <c>qkv_proj</c>) is a decoder projection of some supported family.</summary>
    public static bool IsProjection(string name) => AllLinear.Contains(name) || FusedAllLinear.Contains(name);

    /// <summary>Whether the projection <paramref name="name"/> belongs to <c>self_attn</c> (else to <c>mlp</c>).</summary>
    public static bool IsAttention(string name) => name is "q_proj" or "k_proj" or "v_proj" or "o_proj" or "qkv_proj";

    /// <summary>
    /// The resolved targets for a model of <paramref name="spec"/>: unchanged for the families with separate projections;
    /// for Phi-3, <c>all-linear</c> becomes its four fused projections and q+k+v (gate+up) together become <c>qkv_proj</c>
    /// (<c>gate_up_proj</c>), one adapter on the fused linear as PEFT puts it. Part of a fused linear cannot carry an adapter alone.
    /// </summary>
    /// <exception cref="AdapterException">A target that does not exist in this family; the message names it and the family's names.</exception>
    public static IReadOnlyList<string> ForModel(IEnumerable<string> targets, ModelSpec spec)
    {
        var resolved = ResolveTargets(targets);
        if (!spec.FusedProjections)
        {
            if (resolved.FirstOrDefault(t => !AllLinear.Contains(t)) is { } fused)
                throw new AdapterException($"--targets: '{fused}' is Phi-3's fused projection; a {spec.ModelType} block has {string.Join(", ", AllLinear)}");
            return resolved;
        }
        var result = new List<string>();
        foreach (var name in FusedAllLinear)
        {
            string[] parts = name switch { "qkv_proj" => ["q_proj", "k_proj", "v_proj"], "gate_up_proj" => ["gate_proj", "up_proj"], _ => [name] };
            int given = parts.Count(resolved.Contains);
            if (given > 0 && given < parts.Length)
                throw new AdapterException(
                    $"--targets: {spec.ModelType} fuses {string.Join(", ", parts)} into one {name}, so they take one adapter together; target {name} (or all of {string.Join(",", parts)})");
            if (given == parts.Length || resolved.Contains(name))
                result.Add(name);
        }
        return result;
    }

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
            if (!IsProjection(name))
                throw new AdapterException($"target module '{raw}' does not exist in the decoder; expected some of {string.Join(", ", AllLinear)} (Phi-3: {string.Join(", ", FusedAllLinear)}) or all-linear");
            result.Add(name);
        }
        if (result.Count == 0) throw new AdapterException("no target modules given; expected some of q,k,v,o,gate,up,down or all-linear");
        return result.Distinct().ToList();
    }

    /// <summary>
    /// Wraps every target projection of every block with a fresh adapter of <paramref name="method"/> (built by its
    /// <see cref="AdapterDescriptor"/>), then freezes every parameter of the model except the adapters' own. Call after
    /// the base weights are loaded (DoRA reads them).
    /// </summary>
    /// <param name="model">A loaded model whose projections implement <see cref="IBaseLinear"/>.</param>
    /// <param name="method">An adapter method of <see cref="AdapterRegistry"/>.</param>
    /// <param name="options">Rank, α, dropout.</param>
    /// <param name="targets">Projection names from <see cref="ResolveTargets"/>.</param>
    /// <param name="seed">Seeds the A initialisation so a run is reproducible.</param>
    /// <param name="shared">The method's shared state (<see cref="AdapterDescriptor.CreateShared"/>: VeRA's matrices, sized by
    /// <see cref="VeraDimensions"/>); required where the method has one, not owned.</param>
    /// <param name="initFactors">The factors a data-driven initialisation computed (<see cref="AdapterDescriptor.DataInit"/>), by
    /// module path; not owned (each layer copies what it keeps).</param>
    /// <param name="optionsFor">Per-module options (a PEFT folder's <c>rank_pattern</c>/<c>alpha_pattern</c>); null: <paramref name="options"/> everywhere.</param>
    /// <returns>The adapters in model order.</returns>
    /// <exception cref="AdapterException">A target is not a frozen base, a PiSSA/OSoRA target was not loaded through
    /// <see cref="SvdInitOnLoad"/>, or VeRA has no shared matrices.</exception>
    public static IReadOnlyList<AttachedAdapter> Attach(CausalLm model, TrainingMethod method, LoraOptions options, IReadOnlyList<string> targets, long seed,
        IDisposable? shared = null, IReadOnlyDictionary<string, SvdInitFactors>? initFactors = null, Func<string, LoraOptions>? optionsFor = null)
    {
        var descriptor = AdapterRegistry.Of(method);
        if (shared is null && descriptor.HasSharedState)
            throw new AdapterException($"{descriptor.DisplayName} needs its shared state; build it with {nameof(AdapterDescriptor)}.{nameof(AdapterDescriptor.CreateShared)}");
        torch.manual_seed(seed);
        var attached = new List<AttachedAdapter>();
        foreach (var layer in model.Layers)
        {
            foreach (var name in targets)
            {
                bool attention = IsAttention(name);
                string path = $"model.layers.{layer.Index}.{(attention ? "self_attn" : "mlp")}.{name}";
                var current = attention ? layer.SelfAttn.GetProjection(name) : layer.Mlp.GetProjection(name);
                var record = initFactors is not null && initFactors.TryGetValue(path, out var factors)
                    ? descriptor.Create(new AdapterLayerRequest(current, path, optionsFor?.Invoke(path) ?? options, factors, shared))
                    : Wrap(current, path, descriptor, optionsFor?.Invoke(path) ?? options, shared);
                var wrapped = (nn.Module<Tensor, Tensor>)record.Layer;
                if (attention) layer.SelfAttn.ReplaceProjection(name, wrapped);
                else layer.Mlp.ReplaceProjection(name, wrapped);
                attached.Add(record);
            }
        }
        Freeze(model, attached);
        return attached;
    }

    // One projection's adapter. A load hook (PiSSA, OSoRA, an LQ-LoRA base) hands over the factors it computed and the
    // residual base the adapter wraps.
    private static AttachedAdapter Wrap(nn.Module<Tensor, Tensor> current, string path, AdapterDescriptor descriptor, LoraOptions options, IDisposable? shared)
    {
        if (current is SvdInitLinear hook)
        {
            using var factors = hook.TakeFactors();
            if (factors.Method != descriptor.Method)
                throw new AdapterException($"'{path}': loaded for {Knob.Name(factors.Method)}, attached as {Knob.Name(descriptor.Method)}");
            return descriptor.Create(new AdapterLayerRequest(hook.Inner, path, options, factors, shared));
        }
        if (descriptor.LoadInit is not null)
            throw new AdapterException($"'{path}': {descriptor.DisplayName} computes its initialisation from the full-precision weight on load; build the model with {nameof(SvdInitOnLoad)}.{nameof(SvdInitOnLoad.Wrap)}");
        if (current is not IBaseLinear)
            throw new AdapterException($"'{path}' is a {current.GetType().Name}, not a frozen base linear; build the model with {nameof(BaseWeights)}.{nameof(BaseWeights.Factory)}");
        return descriptor.Create(new AdapterLayerRequest(current, path, options, null, shared));
    }

    /// <summary>
    /// The largest input and output widths over the target projections: the shape VeRA's shared A [r, in] and
    /// B [out, r] must cover (PEFT's <c>_find_dim</c> takes the same maximum, so saved projections match its shapes).
    /// </summary>
    public static (long MaxIn, long MaxOut) VeraDimensions(CausalLm model, IReadOnlyList<string> targets)
    {
        long maxIn = 0, maxOut = 0;
        foreach (var layer in model.Layers)
            foreach (var name in targets)
            {
                bool attention = IsAttention(name);
                var current = attention ? layer.SelfAttn.GetProjection(name) : layer.Mlp.GetProjection(name);
                var linear = current as IBaseLinear ?? throw new AdapterException($"'{name}' of layer {layer.Index} is a {current.GetType().Name}, not a frozen base linear");
                maxIn = Math.Max(maxIn, linear.InFeatures);
                maxOut = Math.Max(maxOut, linear.OutFeatures);
            }
        return (maxIn, maxOut);
    }

    /// <summary>The trainable parameters (the adapters' parameters; OSoRA's frozen U, V are buffers and left out) with unique names, e.g. <c>model.layers.0.self_attn.q_proj.lora_A.weight</c>.</summary>
    public static IReadOnlyList<(string Name, Parameter Param)> TrainableParameters(IReadOnlyList<AttachedAdapter> adapters) =>
        adapters.SelectMany(a => a.Layer.AdapterTensors().Where(kv => kv.Value is Parameter)
            .Select(kv => ($"{a.ModulePath}.{kv.Key}", (Parameter)kv.Value))).ToList();

    /// <summary>Sum of the adapters' trainable scalars.</summary>
    public static long TrainableCount(IReadOnlyList<AttachedAdapter> adapters) => adapters.Sum(a => a.Layer.TrainableParameterCount);

    private static void Freeze(CausalLm model, IReadOnlyList<AttachedAdapter> adapters)
    {
        var trainable = adapters.SelectMany(a => a.Layer.AdapterTensors().Values).Select(t => t.Handle).ToHashSet();
        foreach (var (_, p) in model.named_parameters())
            p.requires_grad = trainable.Contains(p.Handle);
    }
}
