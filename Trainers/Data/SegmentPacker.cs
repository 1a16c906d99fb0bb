namespace QuantPeft.Trainers.Data;

/// <summary>
/// Packs several examples into each row while keeping them apart: every example is laid out exactly as in its own
/// padded row (n tokens give n − 1 positions, its last token only a label, so no label ever reaches into the next
/// example), and the row records where each example starts (<see cref="TrainingRow.Segments"/>). The model then
/// restarts position ids at every example and attends only within it, so an example's loss is what it would be alone.
/// </summary>
/// <remarks>
/// Rows are filled first-fit over the last <see cref="OpenRows"/> rows that still have room, in the (shuffled) order the
/// examples arrive: nearly as dense as sorting by length, without grouping examples of one length into the same
/// steps. Examples longer than a row follow the truncation policy exactly as padding does.
/// </remarks>
public static class SegmentPacker
{
    /// <summary>How many partly filled rows an example may go into (the newest ones); older rows are closed.</summary>
    public const int OpenRows = 32;

    /// <summary>Packs <paramref name="examples"/> into rows of <paramref name="sequenceLength"/> positions.</summary>
    /// <param name="examples">Tokenized examples, in the order they should be visited.</param>
    /// <param name="sequenceLength">T.</param>
    /// <param name="padId">Id written into the unused tail of a row.</param>
    /// <param name="truncation">Policy for an example longer than T + 1 tokens (as <see cref="SequencePadder"/>).</param>
    /// <param name="sourcePath">The dataset file, named in errors.</param>
    /// <exception cref="DatasetFormatException">Under <see cref="TruncationPolicy.Error"/>, examples are too long.</exception>
    public static SequencePadder.Result Pack(IEnumerable<TokenizedExample> examples, int sequenceLength, int padId, TruncationPolicy truncation, string sourcePath)
    {
        // Padding first gives each example its positions and labels, and applies truncation and dropping once, in one place.
        SequencePadder.Result single = SequencePadder.Pad(examples, sequenceLength, padId, truncation, sourcePath);
        var open = new List<Builder>();
        var all = new List<Builder>();
        foreach (TrainingRow example in single.Rows)
        {
            Builder? row = open.FirstOrDefault(b => b.Free >= example.Length);
            if (row is null)
            {
                row = new Builder(sequenceLength, padId);
                all.Add(row);
                open.Add(row);
                if (open.Count > OpenRows) open.RemoveAt(0);
            }
            row.Add(example);
            if (row.Free == 0) open.Remove(row);
        }
        return single with { Rows = [.. all.Select(b => b.Build())] };
    }

    private sealed class Builder(int sequenceLength, int padId)
    {
        private readonly int[] _input = Enumerable.Repeat(padId, sequenceLength).ToArray();
        private readonly int[] _labels = Enumerable.Repeat(TrainingRow.IgnoreIndex, sequenceLength).ToArray();
        private readonly List<int> _segments = [];
        private int _used;

        public int Free => _input.Length - _used;

        public void Add(TrainingRow example)
        {
            Array.Copy(example.InputIds, 0, _input, _used, example.Length);
            Array.Copy(example.Labels, 0, _labels, _used, example.Length);
            _segments.Add(example.Length);
            _used += example.Length;
        }

        public TrainingRow Build() => new(_input, _labels, _used) { Segments = [.. _segments] };
    }
}
