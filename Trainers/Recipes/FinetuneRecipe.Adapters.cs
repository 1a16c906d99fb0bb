using QuantPeft.Formats.Peft;
using QuantPeft.Memory.Planning;
using QuantPeft.Trainers.Adapters;
using QuantPeft.Trainers.Adapters.Methods;
using QuantPeft.Trainers.Pruning;
using QuantPeft.Trainers.Recipes.Components;
using QuantPeft.Trainers.Strategies;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Recipes;

// The trained adapter (or model) on disk: saved in PEFT's format, and loaded back into a set-up run.
public sealed partial class FinetuneRecipe
{
    /// <summary>
    /// Writes the adapter to <paramref name="folder"/> as PEFT reads it (<c>adapter_config.json</c> +
    /// <c>adapter_model.safetensors</c>; LoRA/DoRA as PEFT LoRA, PiSSA as a rank-2r LoRA on the original base, VeRA as
    /// PEFT VeRA, OSoRA as <c>OSORA</c>, see docs/formats.md) through a temporary folder and a rename, so an
    /// interrupted save leaves no half-written adapter. Methods that train the base weights (full, GaLore, Natural
    /// GaLore, LISA) write the whole model as a Hugging Face model folder instead.
    /// </summary>
    /// <remarks>A LoRAM adapter is saved recovered (<see cref="AdapterRecovery"/>): at the unpruned model's shapes.</remarks>
    public void Save(string folder)
    {
        if (FullParameterTraining.TrainsBaseWeights(_options.Method))
            FullModelSaver.Save(Model, _options.ModelFolder, folder);
        else
            RunAdapterFormats.Save(folder, _options, _adapters, Component<SharedAdapterBases>()?.State, Pruning);
    }

    /// <summary>
    /// Copies a saved adapter (from <see cref="Save"/>) into the attached adapters, checking every name and shape.
    /// A PiSSA export is a plain LoRA on the original base: load it into a <c>--method lora</c> run of rank 2r.
    /// </summary>
    /// <exception cref="RecipeException">The adapter is of another kind, or lacks a tensor this model's adapters need.</exception>
    public void LoadAdapter(string folder)
    {
        string peftType = RunAdapterFormats.ReadPeftType(folder);
        string expected = RunAdapterFormats.PeftType(_options.Method);
        if (peftType != expected)
            throw new RecipeException($"{Path.Combine(folder, PeftAdapter.ConfigFileName)}: peft_type \"{peftType}\" cannot load into a --method {Knob.Name(_options.Method)} model (expects \"{expected}\")");
        if (_options.Method == TrainingMethod.Pissa || _options.Weights == WeightFormat.LqLora)
            throw new RecipeException($"{folder}: a {(_options.Method == TrainingMethod.Pissa ? "PiSSA" : "LQ-LoRA")} adapter is exported as a rank-{2 * _options.Rank} LoRA on the original weights; load it with --method lora --rank {2 * _options.Rank} --alpha {2 * _options.Alpha}");
        if (peftType == "LORA" && _adapters.Any(a => a.Initial is not null))   // LoRA-GA: saved relative to the original W as PiSSA is
            throw new RecipeException($"{folder}: a {AdapterRegistry.Of(_options.Method).DisplayName} adapter is exported as a rank-{2 * _options.Rank} LoRA on the original weights; load it with --method lora --rank {2 * _options.Rank} --alpha {2 * _options.Alpha}");
        if (peftType == "LORA")
            using (PeftAdapter.Load(folder)) { }   // validates pairs, shapes and ranks against the config
        using var source = new SafetensorsModelSource(Path.Combine(folder, PeftAdapter.WeightsFileName));
        var names = source.Names.ToHashSet(StringComparer.Ordinal);
        Tensor Get(string key) => names.Contains(key) ? source.Get(key) : throw new RecipeException($"{source.Origin}: missing tensor '{key}'");
        foreach (var c in _components) c.OnAdapterLoad(Run, Get, source.Origin);
        foreach (var a in _adapters)
        {
            var tensors = new Dictionary<string, Tensor>();
            try
            {
                foreach (var local in a.Layer.AdapterTensors().Keys)
                    tensors[local] = Get(LoraTensorNames.Prefix + a.ModulePath + "." + local);
                a.Layer.LoadAdapterTensors(tensors);
            }
            finally
            {
                foreach (var t in tensors.Values) t.Dispose();
            }
        }
    }
}
