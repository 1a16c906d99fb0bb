using QuantPeft.Formats.HuggingFace;
using QuantPeft.Formats.Peft;
using QuantPeft.Trainers.Adapters;
using QuantPeft.Trainers.Model;
using QuantPeft.Trainers.Recipes;
using static TorchSharp.torch;
using QuantPeft.Memory.Planning;

namespace QuantPeft.Trainers.Export;

/// <summary>
/// Puts a saved PEFT LoRA adapter (DoRA with <c>use_dora</c>) onto a model: checks that it fits the architecture (before
/// any weight is read), attaches the adapter layers its config names and copies its tensors in. Merging then goes through
/// <see cref="IAdapterLayer"/>. VeRA and OSoRA folders are merged from their files by <see cref="VeraExportAdapter"/> and
/// <see cref="OsoraExportAdapter"/> instead (<see cref="ExportableAdapters"/> picks by <c>peft_type</c>).
/// </summary>
public static class PeftAdapterApplier
{
    // A PeftAdapter is a LORA folder (its Load refuses other peft_types); use_dora picks DoRA.
    private static TrainingMethod MethodOf(PeftAdapterConfig config) => config.UseDora ? TrainingMethod.Dora : TrainingMethod.Lora;

    /// <summary>
    /// Checks <paramref name="adapter"/> against <paramref name="spec"/> without loading weights: each adapted module is
    /// a decoder projection of the model with the adapter's in/out features, and the config uses no feature the
    /// exporter cannot apply (modules_to_save, trained biases, fan-in-fan-out, embeddings).
    /// </summary>
    /// <exception cref="ExportException">The adapter belongs to another architecture or uses such a feature; the message names the file.</exception>
    public static void CheckFits(PeftAdapter adapter, ModelSpec spec, string modelConfigPath)
    {
        string config = Path.Combine(adapter.Folder, PeftAdapter.ConfigFileName);
        string weights = Path.Combine(adapter.Folder, PeftAdapter.WeightsFileName);
        var c = adapter.Config;
        ExportChecks.Config(c, config, spec);
        if (adapter.Modules.Count == 0)
            throw new ExportException($"{weights}: no adapter tensors");
        var shapes = ExportChecks.Shapes(spec);
        foreach (var m in adapter.Modules)
        {
            if (m.IsEmbedding)
                throw new ExportException($"{weights}: module '{m.ModulePath}' is not a decoder projection of the {spec.ModelType} model in {modelConfigPath} ({spec.NumLayers} layers)");
            var shape = ExportChecks.ProjectionShape(shapes, m.ModulePath, weights, spec, modelConfigPath);
            if (shape[0] != m.OutFeatures || shape[1] != m.InFeatures)
                throw new ExportException($"{weights}: module '{m.ModulePath}' adapts [{m.OutFeatures}, {m.InFeatures}] (out, in), the model's weight is [{shape[0]}, {shape[1]}] ({modelConfigPath}); the adapter was trained on another model");
        }
    }

    /// <summary>
    /// Attaches the adapter's layers to <paramref name="model"/> and loads its tensors. Projections of the targeted kinds
    /// that the adapter does not cover (PEFT's <c>layers_to_transform</c>) get a fresh adapter, which is the identity.
    /// </summary>
    /// <exception cref="ExportException">A tensor the layer needs is missing or has another shape; the message names the file.</exception>
    public static IReadOnlyList<AttachedAdapter> Apply(CausalLm model, PeftAdapter adapter)
    {
        string weights = Path.Combine(adapter.Folder, PeftAdapter.WeightsFileName);
        var c = adapter.Config;
        var method = MethodOf(c);
        var targets = adapter.Modules.Select(m => m.ModulePath[(m.ModulePath.LastIndexOf('.') + 1)..]).Distinct().ToList();
        var attached = ModelAdapters.Attach(model, method, new LoraOptions(c.R, c.LoraAlpha, 0, c.UseRslora), targets, seed: 0,
            optionsFor: path => new LoraOptions(c.RankFor(path), c.AlphaFor(path), 0, c.UseRslora));
        var covered = adapter.Modules.Select(m => m.ModulePath).ToHashSet(StringComparer.Ordinal);
        using var source = new SafetensorsModelSource(weights);
        var names = source.Names.ToHashSet(StringComparer.Ordinal);
        foreach (var a in attached.Where(a => covered.Contains(a.ModulePath)))
        {
            var tensors = new Dictionary<string, Tensor>();
            try
            {
                foreach (var local in a.Layer.AdapterTensors().Keys)
                {
                    string key = LoraTensorNames.Prefix + a.ModulePath + "." + local;
                    if (!names.Contains(key)) throw new ExportException($"{weights}: missing tensor '{key}' ({method} needs it)");
                    tensors[local] = source.Get(key);
                }
                a.Layer.LoadAdapterTensors(tensors);
            }
            catch (AdapterException e)
            {
                throw new ExportException($"{weights}: module '{a.ModulePath}': {e.Message}");
            }
            finally
            {
                foreach (var t in tensors.Values) t.Dispose();
            }
        }
        return attached;
    }
}
