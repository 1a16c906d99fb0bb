namespace QuantPeft.Trainers.Data;

/// <summary>Deterministic train/eval split of record indices by fraction.</summary>
public static class DatasetSplit
{
    /// <summary>
    /// Number of eval records for <paramref name="count"/> records: <c>round(count × fraction)</c> (halves
    /// away from zero), at least 1 when the fraction is positive and at most <c>count − 1</c>, so neither
    /// side is empty.
    /// </summary>
    /// <exception cref="DatasetOptionsException">A positive fraction with fewer than 2 records.</exception>
    public static int EvalCount(int count, double fraction)
    {
        if (fraction <= 0) return 0;
        if (count < 2)
            throw new DatasetOptionsException($"an eval fraction of {fraction} needs at least 2 records; the dataset has {count}");
        int k = (int)Math.Round(count * fraction, MidpointRounding.AwayFromZero);
        return Math.Clamp(k, 1, count - 1);
    }

    /// <summary>
    /// Splits indices <c>0..count-1</c>: a permutation seeded by <paramref name="seed"/> sends its first
    /// <see cref="EvalCount"/> indices to eval. Both lists come back in ascending order.
    /// </summary>
    public static (int[] Train, int[] Eval) Split(int count, double fraction, long seed)
    {
        int k = EvalCount(count, fraction);
        int[] perm = Enumerable.Range(0, count).ToArray();
        SeededRandom.Derive(seed, purpose: 1).Shuffle(perm);
        int[] eval = perm[..k];
        int[] train = perm[k..];
        Array.Sort(eval);
        Array.Sort(train);
        return (train, eval);
    }
}
