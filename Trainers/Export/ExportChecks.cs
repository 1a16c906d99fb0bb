using System.Globalization;
using QuantPeft.Formats.HuggingFace;
using QuantPeft.Formats.Peft;
using QuantPeft.Trainers.Adapters;
using QuantPeft.Trainers.Model;

namespace QuantPeft.Trainers.Export;

/// <summary>The checks every exported adapter kind shares: config features export cannot apply, and module paths that must name decoder projections.</summary>
internal static class ExportChecks
{
    /// <summary>Refuses <c>modules_to_save</c>, trained biases and fan-in-fan-out weights, which no adapter kind here can fold in.</summary>
    /// <exception cref="ExportException">The config uses one of them; the message names the file.</exception>
    public static void Config(PeftAdapterConfig c, string configPath, ModelSpec spec)
    {
        if (c.ModulesToSave is { Count: > 0 })
            throw new ExportException($"{configPath}: modules_to_save ({string.Join(", ", c.ModulesToSave)}) is not supported by qpeft export");
        if (c.Bias != "none" || c.LoraBias)
            throw new ExportException($"{configPath}: trained biases (bias \"{c.Bias}\", lora_bias {c.LoraBias}) are not supported by qpeft export");
        if (c.FanInFanOut)
            throw new ExportException($"{configPath}: fan_in_fan_out (Conv1D-style weights) does not apply to {spec.ModelType} models");
    }

    /// <summary>The weight shapes [out, in] of the model's decoder projections, by checkpoint name (<c>….weight</c>).</summary>
    public static Dictionary<string, long[]> Shapes(ModelSpec spec) =>
        spec.Tensors().ToDictionary(t => t.Name, t => t.Shape, StringComparer.Ordinal);

    /// <summary>The [out, in] shape of the projection at <paramref name="modulePath"/>.</summary>
    /// <exception cref="ExportException">The path is not a decoder projection of the model; the message names <paramref name="weightsPath"/>.</exception>
    public static long[] ProjectionShape(IReadOnlyDictionary<string, long[]> shapes, string modulePath, string weightsPath, ModelSpec spec, string modelConfigPath)
    {
        string projection = modulePath[(modulePath.LastIndexOf('.') + 1)..];
        if (!ModelAdapters.IsProjection(projection) || !shapes.TryGetValue(modulePath + ".weight", out var shape))
            throw new ExportException($"{weightsPath}: module '{modulePath}' is not a decoder projection of the {spec.ModelType} model in {modelConfigPath} ({spec.NumLayers} layers)");
        return shape;
    }

    /// <summary>
    /// The frozen base of the projection at <paramref name="modulePath"/> (<c>model.layers.&lt;i&gt;.self_attn|mlp.&lt;proj&gt;</c>,
    /// established by <see cref="ProjectionShape"/>).
    /// </summary>
    /// <exception cref="ExportException">The projection is not a base that can absorb a merge.</exception>
    public static IBaseLinear DenseBase(CausalLm model, string modulePath)
    {
        string[] parts = modulePath.Split('.');
        var layer = model.Layers[int.Parse(parts[2], CultureInfo.InvariantCulture)];
        var module = parts[3] == "self_attn" ? layer.SelfAttn.GetProjection(parts[4]) : layer.Mlp.GetProjection(parts[4]);
        return module is IBaseLinear { SupportsMerge: true } linear
            ? linear
            : throw new ExportException($"'{modulePath}' is a {module.GetType().Name}, not a dense base that a merge can be added to");
    }
}
