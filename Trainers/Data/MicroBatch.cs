namespace QuantPeft.Trainers.Data;

/// <summary>
/// B rows of T positions, row-major, ready for <c>torch.tensor(InputIds, [B, T])</c>. Plain arrays keep
/// the data layer free of TorchSharp; the trainer makes the tensors.
/// </summary>
/// <param name="BatchSize">B (the last batch of an epoch may be smaller than requested).</param>
/// <param name="SequenceLength">T.</param>
/// <param name="InputIds">B × T input ids.</param>
/// <param name="Labels">B × T pre-shifted labels, −100 where no loss is taken (see <see cref="TrainingRow"/>).</param>
/// <param name="Lengths">Real (non-pad) positions of each row.</param>
public sealed record MicroBatch(int BatchSize, int SequenceLength, long[] InputIds, long[] Labels, int[] Lengths)
{
    /// <summary>Positions that take a loss (the denominator of a mean loss).</summary>
    public int TargetCount => Labels.Count(l => l != TrainingRow.IgnoreIndex);

    /// <summary>Real input tokens (for tokens/s).</summary>
    public int TokenCount => Lengths.Sum();

    /// <summary>Stacks <paramref name="rows"/> into one batch.</summary>
    public static MicroBatch FromRows(IReadOnlyList<TrainingRow> rows)
    {
        ArgumentOutOfRangeException.ThrowIfZero(rows.Count);
        int t = rows[0].InputIds.Length;
        var input = new long[rows.Count * t];
        var labels = new long[rows.Count * t];
        var lengths = new int[rows.Count];
        for (int b = 0; b < rows.Count; b++)
        {
            TrainingRow r = rows[b];
            if (r.InputIds.Length != t)
                throw new ArgumentException($"row {b} has {r.InputIds.Length} positions; row 0 has {t}", nameof(rows));
            for (int i = 0; i < t; i++)
            {
                input[b * t + i] = r.InputIds[i];
                labels[b * t + i] = r.Labels[i];
            }
            lengths[b] = r.Length;
        }
        return new MicroBatch(rows.Count, t, input, labels, lengths);
    }
}
