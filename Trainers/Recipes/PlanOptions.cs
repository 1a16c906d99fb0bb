using QuantPeft.Memory.Planning;
using QuantPeft.Trainers.Model;

namespace QuantPeft.Trainers.Recipes;

/// <summary>
/// The one mapping between the planner's <see cref="Strategy"/> (+ <see cref="Workload"/>) and the trainer's
/// <see cref="FinetuneOptions"/>: a plan decides every strategy field of a run, and the trainer-only settings
/// (data, learning rate, steps, α, seed, …) stay as the caller set them. <see cref="ToStrategy"/> is the inverse,
/// used to price a run configured by flags and to record it in the run folder's plan.
/// </summary>
public static class PlanOptions
{
    /// <summary>
    /// Copies every strategy choice of <paramref name="strategy"/> and the data shape of <paramref name="workload"/>
    /// onto <paramref name="trainer"/>, keeping its trainer-only settings.
    /// </summary>
    /// <exception cref="RecipeException">The strategy asks for something the trainer has no switch for (an unchunked loss, adapter dropout).</exception>
    public static FinetuneOptions Apply(FinetuneOptions trainer, Strategy strategy, Workload workload)
    {
        if (!strategy.ChunkedLoss)
            throw new RecipeException("chunked_loss: the trainer always computes a chunked loss; plan with --chunked-loss on");
        if (workload.AdapterDropout != 0)
            throw new RecipeException($"adapter_dropout: the trainer's adapters have no dropout; found {workload.AdapterDropout} in the plan's workload");
        return trainer with
        {
            Method = strategy.Method,
            Weights = strategy.Weights,
            LqLoraBits = strategy.Weights == WeightFormat.LqLora ? strategy.LqLoraBits : 0,
            DoubleQuant = strategy.DoubleQuant,
            // Full-parameter methods carry rank 0; the trainer's own default stays (it is not used there).
            Rank = strategy.Rank > 0 ? strategy.Rank : trainer.Rank,
            Targets = strategy.IsAdapterMethod ? [TargetList(strategy.Targets)] : trainer.Targets,
            Optimizer = strategy.Optimizer,
            Layerwise = strategy.Layerwise,
            Checkpointing = strategy.Checkpointing,
            Attention = strategy.Attention == AttentionKind.Eager ? AttentionImplementation.Eager : AttentionImplementation.Fused,
            LisaLayers = strategy.Method == TrainingMethod.Lisa ? strategy.LisaLayers : 0,
            Prune = strategy.Method == TrainingMethod.Loram ? strategy.Prune : 0,
            MicroBatchSize = strategy.Batch,
            SequenceLength = workload.Seq,
            GradientAccumulation = workload.GradAccum,
        };
    }

    /// <summary>
    /// The strategy a run configured by <paramref name="options"/> executes, with the neutral values the planner
    /// uses for fields the method has no use for (rank 0 for full-parameter methods, no targets outside adapter
    /// methods). The trainer always chunks its loss.
    /// </summary>
    /// <exception cref="PlanningException">The options' targets are not planner spellings.</exception>
    public static Strategy ToStrategy(FinetuneOptions options)
    {
        var strategy = new Strategy
        {
            Weights = options.Weights,
            LqLoraBits = options.Weights == WeightFormat.LqLora ? options.LqLoraBits : 0,
            // Double quantization only exists for the 4-bit formats; the trainer's default (on) means nothing for bf16.
            DoubleQuant = options.DoubleQuant && options.Weights is WeightFormat.Nf4 or WeightFormat.Fp4,
            Method = options.Method,
            Optimizer = options.Optimizer,
            Layerwise = options.Layerwise,
            Checkpointing = options.Checkpointing,
            LisaLayers = options.Method == TrainingMethod.Lisa ? options.LisaLayers : 0,
            Prune = options.Method == TrainingMethod.Loram ? options.Prune : 0,
            Attention = options.Attention == AttentionImplementation.Eager ? AttentionKind.Eager : AttentionKind.Fused,
            Batch = options.MicroBatchSize,
            ChunkedLoss = true,
        };
        bool ranked = strategy.IsAdapterMethod || options.Method is TrainingMethod.Galore or TrainingMethod.NaturalGalore;
        return strategy with
        {
            Rank = ranked ? options.Rank : 0,
            Targets = strategy.IsAdapterMethod ? ParseTargets(options.Targets) : TargetModules.None,
        };
    }

    /// <summary>The workload (sequence length, accumulation) of a run configured by <paramref name="options"/>.</summary>
    public static Workload ToWorkload(FinetuneOptions options) => new(options.SequenceLength, options.GradientAccumulation)
    {
        RowsPerExample = options.Preference is null ? 1 : 2,
        ReferenceForward = options.Preference is { Task: TrainingTask.Dpo, CacheReference: false } && PreferenceSetup.AdapterOffIsStart(options),
        PackedRows = options.Preference is null && (options.Packing ?? FirstRecordIsText(options)),
    };

    // Packing by the data's shape is on only when every record is text; the plan looks at the first one, so a file that
    // starts with text is priced with the mask (at worst a mask too many), one that starts otherwise is never packed.
    private static bool FirstRecordIsText(FinetuneOptions options)
    {
        if (string.IsNullOrEmpty(options.DataPath) || !File.Exists(options.DataPath)) return false;
        try
        {
            string? line = File.ReadLines(options.DataPath).FirstOrDefault(l => !string.IsNullOrWhiteSpace(l));
            if (line is null) return false;
            using var doc = System.Text.Json.JsonDocument.Parse(line.TrimStart('\uFEFF'));
            return doc.RootElement.ValueKind == System.Text.Json.JsonValueKind.Object
                && doc.RootElement.TryGetProperty(Data.DatasetFields.Parse(options.Fields).Text, out _);
        }
        catch (System.Text.Json.JsonException)
        {
            return false;   // the reader names the bad line when the data is loaded
        }
    }

    // The trainer's target list: all-linear stays one word; any other set is spelled out (the trainer does not read attn/mlp).
    private static string TargetList(TargetModules targets) => targets == TargetModules.AllLinear
        ? "all-linear"
        : string.Join(",", Enum.GetValues<LinearModule>().Where(m => targets.Contains(m)).Select(m => m.ToString().ToLowerInvariant()));

    private static TargetModules ParseTargets(IReadOnlyList<string> targets)
    {
        var names = targets.SelectMany(t => t.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            .Select(t => t.EndsWith("_proj", StringComparison.Ordinal) ? t[..^"_proj".Length] : t)
            .Select(t => t == "all_linear" ? "all-linear" : t);
        var set = TargetModules.None;
        foreach (string name in names)
            set |= Knob.ParseTargets(name);
        return set;
    }
}
