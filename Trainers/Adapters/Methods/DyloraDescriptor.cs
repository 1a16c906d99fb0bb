using QuantPeft.Memory.Planning;
using QuantPeft.Trainers.Export;
using QuantPeft.Trainers.Recipes;
using QuantPeft.Trainers.Recipes.Components;

namespace QuantPeft.Trainers.Adapters.Methods;

/// <summary>
/// DyLoRA: <see cref="DyloraLinear"/> in the paper's frozen mode, its rank drawn each step by <see cref="DyloraRankSampling"/>.
/// At its full rank r a DyLoRA adapter is the PEFT LoRA of rank r and α, so it is saved as one, with
/// <c>dylora_config.json</c> beside it recording the nested ranks (docs/formats.md); <c>qpeft export --rank k</c> reads
/// that file to truncate it (<see cref="DyloraTruncation"/>), and LoRA's descriptor reads it for export.
/// </summary>
internal sealed class DyloraDescriptor : AdapterDescriptor
{
    public override TrainingMethod Method => TrainingMethod.Dylora;
    public override string DisplayName => "DyLoRA";
    public override string PeftType => "LORA";

    public override AttachedAdapter Create(AdapterLayerRequest r) => new(r.ModulePath, new DyloraLinear(r.Base, r.Options));

    public override IRecipeComponent RecipeComponent(FinetuneOptions options) => new DyloraRankSampling();

    internal override void Save(AdapterSaveRequest r)
    {
        // The marker goes in first: the LoRA folder write carries it over, so no reader sees the LoRA without it.
        DyloraTruncation.WriteMarker(r.Folder, r.Options.Rank, r.Options.Alpha);
        RunAdapterFormats.SaveLora(r, useDora: false);
    }
}
