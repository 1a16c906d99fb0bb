using QuantPeft.Trainers.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Adapters;

/// <summary>
/// Stands in a target projection's slot while a data-driven initialisation reads the model: it runs the projection and
/// hands its input and output to a callback, which returns the output the model goes on with (the projection's own for
/// EVA, plus a zero-valued gradient probe for LoRA-GA). <see cref="Install"/> puts probes on every target and
/// <see cref="Restore"/> puts the projections back.
/// </summary>
public sealed class ProjectionProbe : nn.Module<Tensor, Tensor>
{
    private readonly nn.Module<Tensor, Tensor> _inner;
    private readonly Func<Tensor, Tensor, Tensor> _onForward;

    /// <summary>Wraps <paramref name="inner"/>; <paramref name="onForward"/> receives (input, output) and returns the output to use.</summary>
    public ProjectionProbe(string path, nn.Module<Tensor, Tensor> inner, Func<Tensor, Tensor, Tensor> onForward) : base(nameof(ProjectionProbe))
    {
        Path = path;
        _inner = inner;
        _onForward = onForward;
        Base = inner as IBaseLinear ?? throw new AdapterException($"'{path}' is a {inner.GetType().Name}, not a frozen base linear; a data-driven initialisation reads the model before adapters are attached");
    }

    /// <summary>The module path, e.g. <c>model.layers.0.self_attn.q_proj</c>.</summary>
    public string Path { get; }

    /// <summary>The projection probed.</summary>
    public IBaseLinear Base { get; }

    /// <summary>The projection's module, put back by <see cref="Restore"/>.</summary>
    public nn.Module<Tensor, Tensor> Inner => _inner;

    /// <inheritdoc />
    public override Tensor forward(Tensor x) => _onForward(x, _inner.forward(x));

    /// <summary>The target projections of <paramref name="model"/> in model order: module path and the projection.</summary>
    public static IEnumerable<(string Path, IBaseLinear Base)> Targets(CausalLm model, IReadOnlyList<string> targets)
    {
        foreach (var layer in model.Layers)
            foreach (var name in targets)
            {
                bool attention = ModelAdapters.IsAttention(name);
                var current = attention ? layer.SelfAttn.GetProjection(name) : layer.Mlp.GetProjection(name);
                string path = $"model.layers.{layer.Index}.{(attention ? "self_attn" : "mlp")}.{name}";
                yield return (path, current as IBaseLinear ?? throw new AdapterException($"'{path}' is a {current.GetType().Name}, not a frozen base linear"));
            }
    }

    /// <summary>Puts a probe on each target whose path <paramref name="callbackFor"/> gives a callback for (null: left alone).</summary>
    public static List<ProjectionProbe> Install(CausalLm model, IReadOnlyList<string> targets, Func<string, Func<Tensor, Tensor, Tensor>?> callbackFor)
    {
        var probes = new List<ProjectionProbe>();
        foreach (var layer in model.Layers)
            foreach (var name in targets)
            {
                bool attention = ModelAdapters.IsAttention(name);
                string path = $"model.layers.{layer.Index}.{(attention ? "self_attn" : "mlp")}.{name}";
                if (callbackFor(path) is not { } callback) continue;
                var current = attention ? layer.SelfAttn.GetProjection(name) : layer.Mlp.GetProjection(name);
                var probe = new ProjectionProbe(path, current, callback);
                if (attention) layer.SelfAttn.ReplaceProjection(name, probe);
                else layer.Mlp.ReplaceProjection(name, probe);
                probes.Add(probe);
            }
        return probes;
    }

    /// <summary>Puts the probed projections back in their slots.</summary>
    public static void Restore(CausalLm model, IReadOnlyList<string> targets)
    {
        foreach (var layer in model.Layers)
            foreach (var name in targets)
            {
                bool attention = ModelAdapters.IsAttention(name);
                var current = attention ? layer.SelfAttn.GetProjection(name) : layer.Mlp.GetProjection(name);
                if (current is not ProjectionProbe probe) continue;
                if (attention) layer.SelfAttn.ReplaceProjection(name, probe.Inner);
                else layer.Mlp.ReplaceProjection(name, probe.Inner);
            }
    }
}
