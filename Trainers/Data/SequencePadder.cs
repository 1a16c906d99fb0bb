namespace QuantPeft.Trainers.Data;

/// <summary>
/// One example per row: an example of n tokens gives n − 1 real positions (its last token is only a
/// label), so it fits a row of T positions when n ≤ T + 1. The rest of the row is PAD with label −100.
/// </summary>
public static class SequencePadder
{
    /// <summary>Result of padding: the rows and what was cut or left out.</summary>
    /// <param name="Rows">The padded rows, in input order.</param>
    /// <param name="Truncated">Examples shortened by <see cref="TruncationPolicy.KeepStart"/>.</param>
    /// <param name="Dropped">Examples left out (too long under <see cref="TruncationPolicy.Drop"/>, or no target left).</param>
    public sealed record Result(List<TrainingRow> Rows, int Truncated, int Dropped);

    /// <summary>Pads each example to its own row.</summary>
    /// <param name="examples">Tokenized examples.</param>
    /// <param name="sequenceLength">T.</param>
    /// <param name="padId">Id written into padded positions.</param>
    /// <param name="truncation">Policy for examples longer than T + 1 tokens.</param>
    /// <param name="sourcePath">The dataset file, named in errors.</param>
    /// <exception cref="DatasetFormatException">Under <see cref="TruncationPolicy.Error"/>, examples are too long; lists the first few lines with their lengths.</exception>
    public static Result Pad(IEnumerable<TokenizedExample> examples, int sequenceLength, int padId, TruncationPolicy truncation, string sourcePath)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(sequenceLength, 1);
        var rows = new List<TrainingRow>();
        var errors = new List<DatasetLineError>();
        int tooLong = 0, truncated = 0, dropped = 0;
        foreach (TokenizedExample e in examples)
        {
            int n = e.Tokens.Length;
            if (n > sequenceLength + 1)
            {
                switch (truncation)
                {
                    case TruncationPolicy.Error:
                        if (tooLong++ < DatasetFormatException.ReportedLines)
                            errors.Add(new DatasetLineError(e.Line,
                                $"example has {n} tokens, but a padded row of sequence length {sequenceLength} holds at most {sequenceLength + 1} " +
                                "(raise --seq, or choose --truncation keep-start or drop)"));
                        continue;
                    case TruncationPolicy.Drop:
                        dropped++;
                        continue;
                    default:
                        truncated++;
                        n = sequenceLength + 1;
                        break;
                }
            }
            var input = new int[sequenceLength];
            var labels = new int[sequenceLength];
            Array.Fill(input, padId);
            Array.Fill(labels, TrainingRow.IgnoreIndex);
            for (int t = 0; t < n - 1; t++)
            {
                input[t] = e.Tokens[t];
                if (e.IsTarget[t + 1]) labels[t] = e.Tokens[t + 1];
            }
            var row = new TrainingRow(input, labels, Math.Max(n - 1, 0));
            if (row.TargetCount == 0)
            {
                dropped++;
                continue;
            }
            rows.Add(row);
        }
        if (tooLong > 0) throw new DatasetFormatException(sourcePath, errors, tooLong);
        return new Result(rows, truncated, dropped);
    }
}
