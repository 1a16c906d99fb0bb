using QuantPeft.Formats.Peft;
using QuantPeft.Memory.Planning;
using QuantPeft.Trainers.Export;
using QuantPeft.Trainers.Recipes;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Adapters.Methods;

/// <summary>
/// LoRA: <see cref="LoraLinear"/> with B = 0 and A kaiming-uniform; on an LQ-LoRA base it starts at the decomposition's
/// L1·L2 (computed on load by <see cref="LqLoraPlan"/>). Saved as PEFT LoRA; an LQ-LoRA run as the rank-2r LoRA that
/// applies to the original weights. Reads every PEFT LoRA folder back for export.
/// </summary>
internal sealed class LoraDescriptor : AdapterDescriptor
{
    public override TrainingMethod Method => TrainingMethod.Lora;
    public override string DisplayName => "LoRA";
    public override string PeftType => "LORA";

    public override AttachedAdapter Create(AdapterLayerRequest r)
    {
        if (r.Factors is not { } f) return new AttachedAdapter(r.ModulePath, new LoraLinear(r.Base, r.Options));
        var lora = new LoraLinear(r.Base, r.Options, initA: f.First, initB: f.Second);
        return new AttachedAdapter(r.ModulePath, lora) { Initial = RunAdapterFormats.InitialPair(f) };
    }

    internal override void Save(AdapterSaveRequest r)
    {
        if (r.Options.Weights == WeightFormat.LqLora) RunAdapterFormats.SaveAsRank2rLora(r);
        else RunAdapterFormats.SaveLora(r, useDora: false);
    }

    internal override IExportableAdapter? OpenExport(string folder, PeftAdapterConfig config) => new LoraExportAdapter(PeftAdapter.Load(folder));
}
