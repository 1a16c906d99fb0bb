namespace QuantPeft.Trainers.Generation;

/// <summary>
/// Picks the next token from one row of logits on the host: repetition penalty, then greedy at temperature 0, otherwise
/// temperature, top-k, top-p (nucleus) and a draw from the remaining probabilities with a seeded generator.
/// </summary>
public sealed class TokenSampler(SamplingOptions options)
{
    private readonly Random _random = new(options.Seed);

    /// <summary>The next token given <paramref name="logits"/> (V) and the ids of the context so far.</summary>
    public int Next(float[] logits, IReadOnlyCollection<int> context)
    {
        if (options.RepetitionPenalty != 1)
        {
            float r = (float)options.RepetitionPenalty;
            foreach (int id in context.Distinct())
                if ((uint)id < logits.Length) logits[id] = logits[id] > 0 ? logits[id] / r : logits[id] * r;
        }
        if (options.Temperature == 0) return ArgMax(logits);

        // Candidates by descending logit (ties: lower id first, so the order is reproducible).
        int[] order = Enumerable.Range(0, logits.Length).OrderByDescending(i => logits[i]).ThenBy(i => i).ToArray();
        int keep = options.TopK > 0 ? Math.Min(options.TopK, order.Length) : order.Length;
        double max = logits[order[0]];
        var probs = new double[keep];
        double sum = 0;
        for (int i = 0; i < keep; i++) sum += probs[i] = Math.Exp((logits[order[i]] - max) / options.Temperature);
        if (options.TopP < 1)
        {
            double mass = 0;
            for (int i = 0; i < keep; i++)
            {
                mass += probs[i] / sum;
                if (mass >= options.TopP) { keep = i + 1; break; }
            }
            sum = probs.Take(keep).Sum();
        }
        double u = _random.NextDouble() * sum;
        for (int i = 0; i < keep; i++)
        {
            u -= probs[i];
            if (u < 0) return order[i];
        }
        return order[keep - 1];
    }

    private static int ArgMax(float[] logits)
    {
        int best = 0;
        for (int i = 1; i < logits.Length; i++) if (logits[i] > logits[best]) best = i;
        return best;
    }
}
