using QuantPeft.Memory.Planning.Methods;

namespace QuantPeft.Memory.Planning;

/// <summary>
/// The written ranking rules (docs/planner.md, "Ranking"). Quality and speed are ordinal heuristics from the
/// methods' papers and common practice, not measurements; they only order candidates that all fit.
/// </summary>
public static class Ranking
{
    /// <summary>Expected fine-tuning quality in points (higher is better).</summary>
    public static double Quality(Strategy s)
    {
        var method = MethodRegistry.Of(s.Method);
        double q = method.QualityPrior;
        if (s.Method == TrainingMethod.Loram) q -= 20 * s.Prune;
        q -= s.Weights switch
        {
            WeightFormat.Bf16 => 0, WeightFormat.Int8 => 0.5, WeightFormat.Nf4 => 1, WeightFormat.Fp4 => 2,
            _ => 1 + 1.5 * Math.Max(0, 4.127 - s.LqLoraBits),
        };
        if (method.IsAdapter && method.RankRaisesQuality)
        {
            q += Math.Clamp(Math.Log2(s.Rank / 8.0), -2, 3);
            q -= 0.5 * (7 - Enum.GetValues<LinearModule>().Count(m => s.Targets.Contains(m)));
        }
        if (s.Method is TrainingMethod.Galore or TrainingMethod.NaturalGalore)
            q += Math.Clamp(0.5 * Math.Log2(s.Rank / 128.0), -1.5, 1.5);
        if (s.Method == TrainingMethod.Lisa) q += 0.5 * Math.Log2(Math.Max(1, s.LisaLayers));
        if (s.Optimizer is OptimizerKind.AdamW8bit or OptimizerKind.PagedAdamW8bit or OptimizerKind.Galore8bit) q -= 0.2;
        return q;
    }

    /// <summary>Expected time per token relative to full bf16 training at a large micro-batch (lower is better).</summary>
    public static double SpeedFactor(Strategy s)
    {
        double t = MethodRegistry.Of(s.Method).SpeedFactor;
        if (s.Method == TrainingMethod.Loram) t *= Math.Max(0.2, 1 - s.Prune);   // the pruned base computes less
        if (s.Checkpointing) t *= 1.33;                 // one extra forward per layer in backward
        t *= s.Weights switch { WeightFormat.Bf16 => 1.0, WeightFormat.Int8 => 1.15, _ => 1.25 };
        if (s.Attention == AttentionKind.Eager) t *= 1.15;
        if (s.IsPaged) t *= 1.05;
        t *= 1 + 0.6 / s.Batch;                          // small micro-batches underuse the device
        return t;
    }

    /// <summary>Orders candidates: those that fit first, by the objective; then the rest by smallest overflow.</summary>
    public static List<Candidate> Order(IEnumerable<Candidate> candidates, Objective objective)
    {
        var list = candidates.ToList();
        var fits = list.Where(c => c.Fits);
        IOrderedEnumerable<Candidate> ordered = objective switch
        {
            Objective.Quality => fits.OrderByDescending(c => c.Quality).ThenBy(c => c.SpeedFactor).ThenBy(c => c.Estimate.PeakBytes),
            Objective.Speed => fits.OrderBy(c => c.SpeedFactor).ThenByDescending(c => c.Quality).ThenBy(c => c.Estimate.PeakBytes),
            _ => fits.OrderBy(c => c.Estimate.PeakBytes).ThenByDescending(c => c.Quality).ThenBy(c => c.SpeedFactor),
        };
        var rejected = list.Where(c => !c.Fits).OrderBy(c => c.Overflows.Max(o => o.OverBy)).ThenByDescending(c => c.Quality);
        return [.. ordered.ThenBy(c => c.Strategy.Describe(), StringComparer.Ordinal), .. rejected.ThenBy(c => c.Strategy.Describe(), StringComparer.Ordinal)];
    }
}
