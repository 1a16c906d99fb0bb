namespace QuantPeft.Trainers.Data;

/// <summary>
/// Packs examples into full rows: the examples (each already closed by EOS) are concatenated into
/// one stream and cut every T tokens. Row k takes inputs <c>stream[kT, kT+T)</c> and labels from
/// <c>stream[kT+1, kT+T+1)</c>, so the last label of a row is the first input of the next and no
/// token is lost at a cut. An example longer than T simply continues in the next row.
/// </summary>
/// <remarks>
/// Rows attend across example boundaries (causally), as in GPT-style pre-training; EOS separates
/// examples, and the token after an EOS is a target only if it is itself a target (a BOS or a
/// prompt token never is). The tail row is padded; a row with no target is dropped.
/// </remarks>
public static class SequencePacker
{
    /// <summary>Packs <paramref name="examples"/> in order into rows of <paramref name="sequenceLength"/> positions.</summary>
    public static List<TrainingRow> Pack(IEnumerable<TokenizedExample> examples, int sequenceLength, int padId)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(sequenceLength, 1);
        var tokens = new List<int>();
        var targets = new List<bool>();
        foreach (TokenizedExample e in examples)
        {
            tokens.AddRange(e.Tokens);
            targets.AddRange(e.IsTarget);
        }
        var rows = new List<TrainingRow>();
        int n = tokens.Count;
        for (int start = 0; start < n - 1; start += sequenceLength)
        {
            var input = new int[sequenceLength];
            var labels = new int[sequenceLength];
            int length = Math.Min(sequenceLength, n - start);
            for (int t = 0; t < sequenceLength; t++)
            {
                int p = start + t;
                input[t] = t < length ? tokens[p] : padId;
                labels[t] = t < length && p + 1 < n && targets[p + 1] ? tokens[p + 1] : TrainingRow.IgnoreIndex;
            }
            var row = new TrainingRow(input, labels, length);
            if (row.TargetCount > 0) rows.Add(row);
        }
        return rows;
    }
}
