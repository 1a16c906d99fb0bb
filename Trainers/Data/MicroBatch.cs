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

    /// <summary>
    /// B × T segment ids when a row packs several examples apart (<see cref="TrainingRow.Segments"/>), else null: positions
    /// of one example share an id (0, 1, … along the row) and the padded tail takes the next id, so every query has at
    /// least one key it may attend to. Attention is allowed only between positions of one id.
    /// </summary>
    public long[]? SegmentIds { get; init; }

    /// <summary>B × T position ids beside <see cref="SegmentIds"/>: 0, 1, … restarting at every example (and at the tail).</summary>
    public long[]? PositionIds { get; init; }

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
        if (!rows.Any(r => r.Segments is not null)) return new MicroBatch(rows.Count, t, input, labels, lengths);
        var segmentIds = new long[rows.Count * t];
        var positions = new long[rows.Count * t];
        for (int b = 0; b < rows.Count; b++)
        {
            int at = 0, id = 0;
            foreach (int length in rows[b].Segments ?? [rows[b].Length])
            {
                for (int i = 0; i < length; i++, at++)
                {
                    segmentIds[b * t + at] = id;
                    positions[b * t + at] = i;
                }
                id++;
            }
            for (int i = 0; at < t; i++, at++)
            {
                segmentIds[b * t + at] = id;
                positions[b * t + at] = i;
            }
        }
        return new MicroBatch(rows.Count, t, input, labels, lengths) { SegmentIds = segmentIds, PositionIds = positions };
    }
}
