using QuantPeft.Memory.Planning;
using QuantPeft.Optimizers;
using QuantPeft.Optimizers.GaLore;
using QuantPeft.Optimizers.InBackward;
using QuantPeft.Trainers.Adapters;
using QuantPeft.Trainers.Model;
using Parameter = TorchSharp.Modules.Parameter;
using QuantPeft.Memory.Planning.Methods;

namespace QuantPeft.Trainers.Strategies;

/// <summary>
/// Full-parameter training (plain, GaLore, Natural GaLore, and the layers LISA samples): the dense bf16 base
/// becomes trainable in place, the optimizer's parameter groups follow GaLore's split, and layer-wise mode
/// moves the projections' updates into backward.
/// </summary>
public static class FullParameterTraining
{
    /// <summary>The projections of a decoder block, by Hugging Face module name.</summary>
    public static IReadOnlyList<string> AttentionProjections { get; } = ["q_proj", "k_proj", "v_proj", "o_proj"];

    /// <summary>The MLP projections of a decoder block.</summary>
    public static IReadOnlyList<string> MlpProjections { get; } = ["gate_proj", "up_proj", "down_proj"];

    /// <summary>True for the methods that train the base weights themselves rather than adapters.</summary>
    public static bool TrainsBaseWeights(TrainingMethod method) =>
        !MethodRegistry.Of(method).IsAdapter;

    /// <summary>
    /// Makes every parameter of <paramref name="model"/> trainable: each dense projection is replaced by a
    /// <see cref="TrainableLinear"/> over the same tensors, embeddings, norms and head get <c>requires_grad</c>.
    /// Returns every parameter with its Hugging Face name, in model order.
    /// </summary>
    /// <exception cref="StrategyException">A projection is not dense (a quantized base cannot be trained in place).</exception>
    public static IReadOnlyList<(string Name, Parameter Param)> Prepare(CausalLm model)
    {
        foreach (var layer in model.Layers)
        {
            foreach (var name in AttentionOf(model))
                layer.SelfAttn.ReplaceProjection(name, Trainable(layer.SelfAttn.GetProjection(name), layer.Index, "self_attn", name));
            foreach (var name in MlpOf(model))
                layer.Mlp.ReplaceProjection(name, Trainable(layer.Mlp.GetProjection(name), layer.Index, "mlp", name));
        }
        var all = model.named_parameters().Select(p => (p.name, p.parameter)).ToList();
        foreach (var (_, p) in all) p.requires_grad_(true);
        return all;
    }

    /// <summary>The trainable projections of <paramref name="model"/> (after <see cref="Prepare"/>).</summary>
    public static IEnumerable<TrainableLinear> Projections(CausalLm model) =>
        model.Layers.SelectMany(l => AttentionOf(model).Select(n => l.SelfAttn.GetProjection(n))
            .Concat(MlpOf(model).Select(n => l.Mlp.GetProjection(n)))).OfType<TrainableLinear>();

    // Phi-3 keeps q/k/v and gate/up fused, as its checkpoint stores them.
    private static IReadOnlyList<string> AttentionOf(CausalLm model) => model.Spec.FusedProjections ? ["qkv_proj", "o_proj"] : AttentionProjections;

    private static IReadOnlyList<string> MlpOf(CausalLm model) => model.Spec.FusedProjections ? ["gate_up_proj", "down_proj"] : MlpProjections;

    /// <summary>
    /// The parameter groups: with a GaLore optimizer, the projection weights (galore-torch's "Linear weights of
    /// attn and mlp modules") form a group with <paramref name="galore"/>, and embeddings, norms, biases and the
    /// head a plain group; otherwise one group holds everything.
    /// </summary>
    public static IReadOnlyList<ParamGroup> Groups(IReadOnlyList<(string Name, Parameter Param)> trainable,
        ParamGroupOptions options, GaLoreOptions? galore)
    {
        if (galore is null) return [new ParamGroup("all", trainable, options)];
        bool Projected((string Name, Parameter Param) p) => p.Param.dim() == 2 && IsProjectionWeight(p.Name);
        var projected = trainable.Where(Projected).ToList();
        var rest = trainable.Where(p => !Projected(p)).ToList();
        var groups = new List<ParamGroup> { new("galore", projected, options with { GaLore = galore }) };
        if (rest.Count > 0) groups.Add(new ParamGroup("other", rest, options));
        return groups;
    }

    /// <summary>
    /// Layer-wise mode: every projection weight is stepped by <paramref name="optimizer"/> inside backward.
    /// Parameters outside the projections (embeddings, norms, biases, head) keep ordinary gradients and are
    /// updated by the optimizer's step after backward, which skips the projections (they have no gradient).
    /// </summary>
    public static OptimizerInBackward AttachInBackward(CausalLm model, IOptimizer optimizer)
    {
        // No accumulation and no global clipping: the global norm is only known after every weight moved.
        var hook = new OptimizerInBackward(optimizer);
        foreach (var projection in Projections(model)) projection.InBackward = hook;
        return hook;
    }

    /// <summary>True for <c>model.layers.N.self_attn.*_proj.weight</c> and <c>model.layers.N.mlp.*_proj.weight</c>.</summary>
    public static bool IsProjectionWeight(string name) =>
        name.StartsWith("model.layers.", StringComparison.Ordinal) && name.EndsWith("_proj.weight", StringComparison.Ordinal)
        && (name.Contains(".self_attn.", StringComparison.Ordinal) || name.Contains(".mlp.", StringComparison.Ordinal));

    private static TrainableLinear Trainable(TorchSharp.torch.nn.Module<TorchSharp.torch.Tensor, TorchSharp.torch.Tensor> module, int layer, string block, string name) =>
        module switch
        {
            TrainableLinear t => t,
            DenseLinear d => new TrainableLinear((Parameter)d.Weight, (Parameter?)d.Bias),
            _ => throw new StrategyException(
                $"model.layers.{layer}.{block}.{name}: full-parameter training needs a dense bf16 projection, found {module.GetType().Name}; load the base with --weights bf16"),
        };
}
