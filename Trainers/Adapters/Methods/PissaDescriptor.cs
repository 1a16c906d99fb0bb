using QuantPeft.Memory.Planning;
using QuantPeft.Trainers.Recipes;

namespace QuantPeft.Trainers.Adapters.Methods;

/// <summary>
/// PiSSA: a <see cref="LoraLinear"/> whose A, B are the top-r singular triplets of W (split √s each), over the residual
/// W − U_r S_r V_rᵀ, computed as the weight streams in. Saved as the rank-2r PEFT LoRA on the original weights.
/// </summary>
internal sealed class PissaDescriptor : AdapterDescriptor
{
    public override TrainingMethod Method => TrainingMethod.Pissa;
    public override string DisplayName => "PiSSA";
    public override string PeftType => "LORA";

    public override LoadTimeInit LoadInit { get; } = (weight, rank, scaling) =>
    {
        var (residual, a, b) = SvdInit.Pissa(weight, rank, scaling);
        return (residual, a, b, null);
    };

    public override AttachedAdapter Create(AdapterLayerRequest r)
    {
        var f = r.Factors ?? throw new AdapterException($"'{r.ModulePath}': PiSSA needs the factors computed on load");
        var lora = new LoraLinear(r.Base, r.Options, initA: f.First, initB: f.Second);
        return new AttachedAdapter(r.ModulePath, lora) { Initial = RunAdapterFormats.InitialPair(f) };
    }

    internal override void Save(AdapterSaveRequest r) => RunAdapterFormats.SaveAsRank2rLora(r);
}
