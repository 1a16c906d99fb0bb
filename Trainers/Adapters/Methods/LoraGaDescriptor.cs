using QuantPeft.Memory.Planning;
using QuantPeft.Trainers.Recipes;

namespace QuantPeft.Trainers.Adapters.Methods;

/// <summary>
/// LoRA-GA: a <see cref="LoraGaLinear"/> starting at A₀, B₀ from the SVD of the first batches' gradient
/// (<see cref="LoraGaInit"/>), with −s·B₀A₀ frozen so the model starts unchanged. Saved as the rank-2r PEFT LoRA on the
/// original base, as PiSSA is.
/// </summary>
internal sealed class LoraGaDescriptor : AdapterDescriptor
{
    public override TrainingMethod Method => TrainingMethod.LoraGa;
    public override string DisplayName => "LoRA-GA";
    public override string PeftType => "LORA";

    public override DataDrivenInit DataInit { get; } = LoraGaInit.Compute;

    public override AttachedAdapter Create(AdapterLayerRequest r)
    {
        var f = r.Factors ?? throw new AdapterException($"'{r.ModulePath}': LoRA-GA needs the factors its data-driven initialisation computes from the training batches");
        var layer = new LoraGaLinear(r.Base, r.Options, f.First, f.Second);
        return new AttachedAdapter(r.ModulePath, layer) { Initial = RunAdapterFormats.InitialPair(f) };
    }

    internal override void Save(AdapterSaveRequest r) => RunAdapterFormats.SaveAsRank2rLora(r);
}
