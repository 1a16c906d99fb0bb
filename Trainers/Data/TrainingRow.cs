namespace QuantPeft.Trainers.Data;

/// <summary>
/// One row of T positions. Labels are <b>pre-shifted</b>: <c>Labels[t]</c> is the token the logits at
/// position t must predict (the token at t + 1 of the source), or <see cref="IgnoreIndex"/> where no
/// loss is taken. The loss is therefore <c>cross_entropy(logits[t], Labels[t])</c> over all t with no
/// further shifting, which also lets a chunked loss split positions anywhere.
/// </summary>
/// <param name="InputIds">T input ids; positions at and after <paramref name="Length"/> hold the pad id.</param>
/// <param name="Labels">T pre-shifted labels; −100 where ignored (prompt, padding, separators).</param>
/// <param name="Length">Real (non-pad) input positions; attention must not look past them.</param>
public sealed record TrainingRow(int[] InputIds, int[] Labels, int Length)
{
    /// <summary>The label value that takes no loss (PyTorch's <c>ignore_index</c> default).</summary>
    public const int IgnoreIndex = -100;

    /// <summary>Number of positions that take a loss.</summary>
    public int TargetCount => Labels.Count(l => l != IgnoreIndex);

    /// <summary>
    /// For a row that packs several examples apart (<see cref="RowLayout.Segmented"/>): the positions of each example, in
    /// order, summing to <see cref="Length"/>. Position ids restart and attention is confined at each boundary. Null for a
    /// row that is one sequence (padded, or the stream of <see cref="RowLayout.Packed"/>).
    /// </summary>
    public int[]? Segments { get; init; }
}
