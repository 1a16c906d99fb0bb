using QuantPeft.Formats.Peft;
using QuantPeft.Formats.Safetensors;
using QuantPeft.Memory.Planning;
using QuantPeft.Trainers.Recipes;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Adapters.Methods;

/// <summary>
/// NLoRA: <see cref="NloraLinear"/>, B·M·A started at the Nyström approximation of W over the residual base, computed as
/// the weight streams in. PEFT has no NLoRA, but its update s·B·M·A is the LoRA (A, B·M); relative to the ORIGINAL W
/// it is s·(B·M·A − B₀·M₀·A₀), so it is saved as PiSSA is: the rank-2r PEFT LoRA A = [A; A₀], B = [B·M, −B₀·M₀], α doubled.
/// </summary>
internal sealed class NloraDescriptor : AdapterDescriptor
{
    public override TrainingMethod Method => TrainingMethod.Nlora;
    public override string DisplayName => "NLoRA";
    public override string PeftType => "LORA";

    public override LoadTimeInit LoadInit { get; } = (weight, rank, scaling) => NystromInit.Nlora(weight, rank, scaling);

    public override AttachedAdapter Create(AdapterLayerRequest r)
    {
        var f = r.Factors ?? throw new AdapterException($"'{r.ModulePath}': NLoRA needs the factors computed on load");
        var layer = new NloraLinear(r.Base, r.Options, initA: f.First, initB: f.Second, initM: f.Third!);
        var (a0, b0) = layer.FoldedPair();
        return new AttachedAdapter(r.ModulePath, layer) { Initial = new Dictionary<string, Tensor> { ["lora_A.weight"] = a0.DetachFromDisposeScope(), ["lora_B.weight"] = b0.DetachFromDisposeScope() } };
    }

    internal override void Save(AdapterSaveRequest r)
    {
        var entries = new List<SafetensorsTensorEntry>();
        foreach (var a in r.Adapters)
        {
            using var scope = NewDisposeScope();
            var layer = (NloraLinear)a.Layer;
            var init = a.Initial ?? throw new RecipeException($"'{a.ModulePath}': NLoRA adapter without its initial factors");
            var (nowA, nowB) = layer.FoldedPair();
            entries.Add(RunAdapterFormats.Entry(a.ModulePath, "lora_A.weight", cat([nowA, init["lora_A.weight"]], 0)));
            entries.Add(RunAdapterFormats.Entry(a.ModulePath, "lora_B.weight", cat([nowB, init["lora_B.weight"].neg()], 1)));
        }
        PeftAdapter.Save(r.Folder, new PeftAdapterConfig
        {
            PeftType = "LORA", TaskType = "CAUSAL_LM", BaseModelNameOrPath = ModelFolder.Describe(r.Options.ModelFolder), InferenceMode = true,
            R = 2 * r.Options.Rank, LoraAlpha = 2 * r.Options.Alpha, TargetModules = PeftModuleSelector.FromNames(r.Targets),
        }, entries);
    }
}
