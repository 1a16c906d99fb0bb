using QuantPeft.Memory.Planning;
using QuantPeft.Trainers.Recipes;

namespace QuantPeft.Trainers.Adapters.Methods;

/// <summary>
/// LoRAM: a plain <see cref="LoraLinear"/> on the pruned base (the pruning itself happens on load, <c>LoramPruner</c>);
/// saved as PEFT LoRA recovered to the unpruned model's shapes (<c>AdapterRecovery</c>).
/// </summary>
internal sealed class LoramDescriptor : AdapterDescriptor
{
    public override TrainingMethod Method => TrainingMethod.Loram;
    public override string DisplayName => "LoRAM";
    public override string PeftType => "LORA";

    public override AttachedAdapter Create(AdapterLayerRequest r) => new(r.ModulePath, new LoraLinear(r.Base, r.Options));

    internal override void Save(AdapterSaveRequest r) => RunAdapterFormats.SaveLora(r, useDora: false);
}
