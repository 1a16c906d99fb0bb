using QuantPeft.Formats.HuggingFace;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Model;

/// <summary>
/// Streams a checkpoint into a <see cref="CausalLm"/> tensor by tensor, by Hugging Face name. The
/// whole name set is checked against <see cref="ModelSpec.Tensors()"/> before anything is copied, so a
/// wrong checkpoint fails before it half-overwrites the model; each tensor's shape is checked before
/// it is copied. Only one source tensor is alive at a time. A weight that an <see cref="IQuantizedTensorSource"/>
/// stores quantized goes as stored to a module that implements <see cref="IQuantizedLoadTarget"/>.
/// </summary>
public static class WeightLoader
{
    private const int NamesShown = 8;

    /// <summary>Loads every tensor of <paramref name="source"/> into <paramref name="model"/> (shapes as <see cref="CausalLm.ExpectedTensors"/> gives them).</summary>
    /// <remarks>
    /// Ignored: <c>*.rotary_emb.inv_freq</c> buffers that old checkpoints carry (the model derives them from
    /// the spec), and <c>lm_head.weight</c> when embeddings are tied (some exporters write the shared copy).
    /// Tensors are converted to the dtype and device of the receiving parameter.
    /// </remarks>
    /// <exception cref="ModelException">Missing or unexpected tensors, or a tensor of the wrong shape; the message names them.</exception>
    public static void Load(CausalLm model, ITensorSource source)
    {
        var expected = model.ExpectedTensors().ToDictionary(t => t.Name);
        var names = source.Names.ToList();
        var present = names.ToHashSet(StringComparer.Ordinal);
        var missing = expected.Keys.Where(n => !present.Contains(n)).ToList();
        var unexpected = names.Where(n => !expected.ContainsKey(n) && !IsIgnorable(n, model.Spec)).ToList();
        if (missing.Count > 0 || unexpected.Count > 0)
            throw new ModelException($"{source.Origin}: checkpoint does not match the {model.Spec.ModelType} spec: "
                + Describe("missing", missing) + (missing.Count > 0 && unexpected.Count > 0 ? "; " : "")
                + Describe("unexpected", unexpected));

        var modules = model.named_modules().ToDictionary(m => m.name, m => m.module, StringComparer.Ordinal);
        var quantized = source as IQuantizedTensorSource;
        foreach (var name in names)
        {
            if (!expected.TryGetValue(name, out var spec)) continue;
            int dot = name.LastIndexOf('.');
            string moduleName = name[..dot], local = name[(dot + 1)..];
            if (!modules.TryGetValue(moduleName, out var owner))
                throw new ModelException($"{source.Origin}: tensor '{name}': the model has no module '{moduleName}'");
            if (quantized is not null && owner is IQuantizedLoadTarget target && quantized.IsQuantized(name))
            {
                LoadQuantized(quantized, target, name, local, spec.Shape);
                continue;
            }
            using var value = source.Get(name);
            if (!value.shape.SequenceEqual(spec.Shape))
                throw new ModelException($"{source.Origin}: tensor '{name}': expected shape {Shape(spec.Shape)}, found {Shape(value.shape)}");
            Assign(owner, moduleName, local, value, source.Origin, name);
        }
    }

    // A pre-quantized weight goes to its module as stored; the module's own checks (format, configuration) are
    // reported with the tensor and the file, as the loader's are.
    private static void LoadQuantized(IQuantizedTensorSource source, IQuantizedLoadTarget target, string name, string local, long[] shape)
    {
        using var weight = source.GetQuantized(name);
        if (!weight.Shape.SequenceEqual(shape))
            throw new ModelException($"{weight.Origin}: tensor '{name}': expected shape {Shape(shape)}, found {Shape(weight.Shape)} (stored as {weight.Describe()})");
        try
        {
            target.LoadQuantized(local, weight);
        }
        catch (QuantPeft.Formats.QuantPeftException e) when (e is not ModelException)
        {
            throw new ModelException($"{weight.Origin}: tensor '{name}': {e.Message}");
        }
    }

    private static void Assign(nn.Module owner, string moduleName, string local, Tensor value, string origin, string name)
    {
        if (owner is ITensorLoadTarget target)
        {
            target.LoadTensor(local, value);
            return;
        }
        var slot = owner.named_parameters(recurse: false).Where(p => p.name == local).Select(p => (Tensor)p.parameter)
            .Concat(owner.named_buffers(recurse: false).Where(b => b.name == local).Select(b => b.buffer))
            .FirstOrDefault()
            ?? throw new ModelException(
                $"{origin}: tensor '{name}': module '{moduleName}' ({owner.GetType().Name}) has no parameter '{local}' and does not implement {nameof(ITensorLoadTarget)}");
        if (!slot.shape.SequenceEqual(value.shape))
            throw new ModelException($"{origin}: tensor '{name}': the model's parameter has shape {Shape(slot.shape)}, the checkpoint {Shape(value.shape)}");
        using (no_grad())
            slot.copy_(value);
    }

    private static bool IsIgnorable(string name, ModelSpec spec) =>
        name.EndsWith(".rotary_emb.inv_freq", StringComparison.Ordinal)
        || (spec.TieWordEmbeddings && name == "lm_head.weight");

    private static string Describe(string what, List<string> names) => names.Count == 0 ? "" :
        $"{names.Count} {what} tensor(s): " + string.Join(", ", names.Take(NamesShown).Select(n => $"'{n}'"))
        + (names.Count > NamesShown ? $" and {names.Count - NamesShown} more" : "");

    private static string Shape(long[] shape) => "[" + string.Join(", ", shape) + "]";
}
