using QuantPeft.Formats.HuggingFace;
using QuantPeft.Formats.Peft;
using QuantPeft.Trainers.Model;

namespace QuantPeft.Trainers.Export;

/// <summary>
/// A PEFT LoRA folder (DoRA with <c>use_dora</c>; PiSSA and LQ-LoRA runs are saved as a rank-2r LoRA on the original base):
/// attached through <see cref="PeftAdapterApplier"/> and merged by each layer's <see cref="Adapters.IAdapterLayer.Merge"/>.
/// </summary>
internal sealed class LoraExportAdapter(PeftAdapter adapter) : IExportableAdapter
{
    public string Folder => adapter.Folder;

    /// <summary>The adapter folder's config and tensors.</summary>
    public PeftAdapter Adapter => adapter;

    public string Method => adapter.Config.UseDora ? "DoRA" : "LoRA";

    public void CheckFits(ModelSpec spec, string modelConfigPath) => PeftAdapterApplier.CheckFits(adapter, spec, modelConfigPath);

    /// <summary>Attaches the adapter to <paramref name="model"/> without merging (generation on a quantized base).</summary>
    public int Attach(CausalLm model) => PeftAdapterApplier.Apply(model, adapter).Count;

    public int MergeInto(CausalLm model)
    {
        var attached = PeftAdapterApplier.Apply(model, adapter);
        foreach (var a in attached) a.Layer.Merge();
        return attached.Count;
    }

    public void Dispose() => adapter.Dispose();
}
