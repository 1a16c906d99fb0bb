using QuantPeft.Memory.Planning;
using QuantPeft.Trainers.Recipes;

namespace QuantPeft.Trainers.Adapters.Methods;

/// <summary>DoRA: <see cref="DoraLinear"/>, LoRA on the direction plus a trained magnitude; saved as PEFT LoRA with <c>use_dora</c>.</summary>
internal sealed class DoraDescriptor : AdapterDescriptor
{
    public override TrainingMethod Method => TrainingMethod.Dora;
    public override string DisplayName => "DoRA";
    public override string PeftType => "LORA";

    public override AttachedAdapter Create(AdapterLayerRequest r) => new(r.ModulePath, new DoraLinear(r.Base, r.Options));

    internal override void Save(AdapterSaveRequest r) => RunAdapterFormats.SaveLora(r, useDora: true);
}
