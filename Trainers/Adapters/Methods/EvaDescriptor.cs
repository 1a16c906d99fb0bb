using QuantPeft.Formats.Peft;
using QuantPeft.Memory.Planning;
using QuantPeft.Trainers.Recipes;

namespace QuantPeft.Trainers.Adapters.Methods;

/// <summary>
/// EVA: a <see cref="LoraLinear"/> whose A is the top right-singular vectors of its inputs on the run's first batches
/// and whose rank is redistributed by explained variance (<see cref="EvaInit"/>); B = 0. Every target keeps the
/// scaling s of rank r (α scaled with the target's rank, as PEFT's EVA does), so only the directions and their number
/// differ from LoRA. Saved as PEFT LoRA with <c>rank_pattern</c> and <c>alpha_pattern</c> for the targets whose rank moved.
/// </summary>
internal sealed class EvaDescriptor : AdapterDescriptor
{
    public override TrainingMethod Method => TrainingMethod.Eva;
    public override string DisplayName => "EVA";
    public override string PeftType => "LORA";

    public override DataDrivenInit DataInit { get; } = EvaInit.Compute;

    public override AttachedAdapter Create(AdapterLayerRequest r)
    {
        var f = r.Factors ?? throw new AdapterException($"'{r.ModulePath}': EVA needs the factors its data-driven initialisation computes from the training batches");
        var lora = new LoraLinear(r.Base, OptionsFor(r.Options, (int)f.First.shape[0]), initA: f.First, initB: f.Second);
        return new AttachedAdapter(r.ModulePath, lora);
    }

    /// <summary>The options of a target given <paramref name="rank"/> components: α moved with the rank so that s stays the run's.</summary>
    public static LoraOptions OptionsFor(LoraOptions run, int rank) =>
        new(rank, run.Scaling * (run.UseRsLora ? Math.Sqrt(rank) : rank), run.Dropout, run.UseRsLora);

    internal override void Save(AdapterSaveRequest r)
    {
        var ranks = new Dictionary<string, int>(StringComparer.Ordinal);
        var alphas = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var a in r.Adapters)
        {
            var options = ((LoraLinear)a.Layer).Options;
            if (options.Rank == r.Options.Rank) continue;
            ranks[a.ModulePath] = options.Rank;
            alphas[a.ModulePath] = options.Alpha;
        }
        var config = RunAdapterFormats.LoraConfig(r.Options, r.Targets, r.Options.Rank, r.Options.Alpha) with { RankPattern = ranks, AlphaPattern = alphas };
        PeftAdapter.Save(r.Folder, config, r.Adapters.SelectMany(a => a.Layer.AdapterTensors().Select(kv => RunAdapterFormats.Entry(a.ModulePath, kv.Key, kv.Value))));
    }
}
