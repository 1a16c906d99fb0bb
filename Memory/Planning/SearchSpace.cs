using QuantPeft.Formats.HuggingFace;
using QuantPeft.Memory.Planning.Methods;

namespace QuantPeft.Memory.Planning;

/// <summary>
/// Enumerates the strategies consistent with the fixed knobs. Open knobs take the values listed here; values
/// that another value dominates in both memory and quality are not searched (fp4 under nf4, double
/// quantization off, eager attention, unchunked loss), though a caller may still fix them.
/// </summary>
public static class SearchSpace
{
    /// <summary>Adapter ranks searched unless the method's descriptor names its own (VeRA: 256).</summary>
    public static readonly int[] AdapterRanks = [8, 16, 64];
    /// <summary>GaLore / Natural GaLore projection ranks searched.</summary>
    public static readonly int[] GaloreRanks = [128, 512, 1024];
    /// <summary>LISA γ searched.</summary>
    public static readonly int[] LisaLayerCounts = [1, 2, 4];
    /// <summary>LoRAM pruning ratios searched (the paper's settings).</summary>
    public static readonly double[] PruneRatios = [0.65, 0.75, 0.85, 0.95];
    /// <summary>Micro-batch sizes searched.</summary>
    public static readonly int[] Batches = [1, 2, 4, 8];
    /// <summary>LQ-LoRA bit width searched (the released 2.75-bit budget).</summary>
    public const double LqLoraDefaultBits = 2.75;

    /// <summary>Every strategy allowed by <paramref name="c"/>, without duplicates.</summary>
    public static List<Strategy> Enumerate(ModelSpec spec, Workload w, Constraints c)
    {
        var result = new HashSet<Strategy>();
        foreach (TrainingMethod m in c.Method is { } fm ? [fm] : Enum.GetValues<TrainingMethod>())
        {
            if (!MethodAllowed(m, c)) continue;
            bool adapter = MethodRegistry.Of(m).IsAdapter;
            foreach (var (weights, bits) in WeightsFor(m, c))
            foreach (bool dq in DoubleQuantFor(weights, c))
            foreach (int rank in RanksFor(m, c))
            foreach (OptimizerKind opt in OptimizersFor(m, c))
            foreach (bool lw in Pick(c.Layerwise, adapter || w.GradAccum > 1 ? [false] : [false, true]))
            foreach (bool ckpt in Pick(c.Checkpointing, [false, true]))
            foreach (int lisa in m == TrainingMethod.Lisa ? Pick(c.LisaLayers, LisaLayerCounts.Where(g => g <= spec.NumLayers).ToArray()) : [0])
            foreach (double prune in m == TrainingMethod.Loram ? Pick(c.Prune, PruneRatios) : [0.0])
            foreach (int batch in Pick(c.Batch, Batches))
            {
                result.Add(new Strategy
                {
                    Weights = weights, LqLoraBits = bits, DoubleQuant = dq, Method = m, Rank = rank,
                    Targets = adapter ? c.Targets ?? TargetModules.AllLinear : TargetModules.None,
                    Optimizer = opt, Layerwise = lw, Checkpointing = ckpt, LisaLayers = lisa, Prune = prune,
                    Attention = c.Attention ?? AttentionKind.Fused, Batch = batch, ChunkedLoss = c.ChunkedLoss ?? true,
                });
            }
        }
        return [.. result];
    }

    // Knobs that only one method uses narrow the search to that method.
    private static bool MethodAllowed(TrainingMethod m, Constraints c)
    {
        if (c.LisaLayers is not null && m != TrainingMethod.Lisa) return false;
        if (c.Prune is not null && m != TrainingMethod.Loram) return false;
        if (c.Weights == WeightFormat.LqLora && m != TrainingMethod.Lora) return false;
        if (c.Optimizer is OptimizerKind.Galore or OptimizerKind.Galore8bit && m != TrainingMethod.Galore) return false;
        if (c.Optimizer == OptimizerKind.NaturalGalore && m != TrainingMethod.NaturalGalore) return false;
        bool fullParam = !MethodRegistry.Of(m).IsAdapter;
        if (fullParam && (c.Targets is not null || (c.Weights is { } wf && wf != WeightFormat.Bf16))) return false;
        if (!fullParam && c.Layerwise == true) return false;
        if (c.Rank is not null && m is TrainingMethod.Full or TrainingMethod.Lisa) return false;
        return true;
    }

    private static IEnumerable<(WeightFormat, double)> WeightsFor(TrainingMethod m, Constraints c)
    {
        if (c.Weights is { } fixedWeights)
        {
            yield return (fixedWeights, fixedWeights == WeightFormat.LqLora ? c.LqLoraBits ?? LqLoraDefaultBits : 0);
            yield break;
        }
        yield return (WeightFormat.Bf16, 0);
        if (!MethodRegistry.Of(m).IsAdapter) yield break;
        if (m != TrainingMethod.Loram) yield return (WeightFormat.Int8, 0);
        yield return (WeightFormat.Nf4, 0);
        if (m == TrainingMethod.Lora) yield return (WeightFormat.LqLora, LqLoraDefaultBits);
    }

    private static IEnumerable<bool> DoubleQuantFor(WeightFormat w, Constraints c) =>
        w is WeightFormat.Nf4 or WeightFormat.Fp4 ? [c.DoubleQuant ?? true] : [false];

    private static int[] RanksFor(TrainingMethod m, Constraints c) =>
        MethodRegistry.Of(m).SearchRanks is [0] ? [0] : Pick(c.Rank, MethodRegistry.Of(m).SearchRanks);

    private static OptimizerKind[] OptimizersFor(TrainingMethod m, Constraints c)
    {
        OptimizerKind[] all = m switch
        {
            TrainingMethod.Galore => [OptimizerKind.Galore, OptimizerKind.Galore8bit],
            TrainingMethod.NaturalGalore => [OptimizerKind.NaturalGalore],
            TrainingMethod.Full or TrainingMethod.Lisa => [OptimizerKind.AdamW, OptimizerKind.AdamW8bit, OptimizerKind.PagedAdamW, OptimizerKind.PagedAdamW8bit],
            _ => [OptimizerKind.AdamW, OptimizerKind.AdamW8bit, OptimizerKind.PagedAdamW8bit],
        };
        if (c.Optimizer is not { } o) return all;
        // A fixed plain optimizer is honoured for any method that accepts plain AdamW variants.
        return m is TrainingMethod.Galore or TrainingMethod.NaturalGalore ? all.Where(x => x == o).ToArray()
            : o is OptimizerKind.Galore or OptimizerKind.Galore8bit or OptimizerKind.NaturalGalore ? [] : [o];
    }

    private static T[] Pick<T>(T? fixedValue, T[] options) where T : struct => fixedValue is { } v ? [v] : options;
}
