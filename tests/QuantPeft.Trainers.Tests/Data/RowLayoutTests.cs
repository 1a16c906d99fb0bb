using QuantPeft.Trainers.Data;
using QuantPeft.Trainers.Tokenizers;

namespace QuantPeft.Trainers.Tests.Data;

public class RowLayoutTests
{
    private const int B = 256, E = 257, P = 258, X = TrainingRow.IgnoreIndex;
    private static readonly ExampleEncoder Encoder = new(ByteLevelTokenizer.Instance, ChatTemplate.Default);

    private static TokenizedExample Ex(DatasetRecord r, int line = 0) => Encoder.Encode(r with { Line = line });

    [Fact]
    public void PackedRowsMatchHandDerivedLayout()
    {
        // Stream: B a E B b E (6 tokens). Row 0 inputs B a E B; labels are the next token where it is a
        // target: a, E, (next is BOS: ignored), b. Row 1 inputs b E, then padding.
        var rows = SequencePacker.Pack([Ex(DatasetRecord.FromText("a")), Ex(DatasetRecord.FromText("b"))], 4, P);
        Assert.Equal(2, rows.Count);
        Assert.Equal([B, 'a', E, B], rows[0].InputIds);
        Assert.Equal(['a', E, X, 'b'], rows[0].Labels);
        Assert.Equal(4, rows[0].Length);
        Assert.Equal(['b', E, P, P], rows[1].InputIds);
        Assert.Equal([E, X, X, X], rows[1].Labels);
        Assert.Equal(2, rows[1].Length);
    }

    [Fact]
    public void PackingKeepsEveryTokenAndEveryTargetExceptTheFirst()
    {
        var examples = Enumerable.Range(0, 40)
            .Select(i => Ex(i % 2 == 0 ? DatasetRecord.FromText(new string('x', i % 7 + 1)) : DatasetRecord.FromPromptCompletion(new string('p', i % 5), new string('c', i % 3 + 1))))
            .ToList();
        int[] stream = [.. examples.SelectMany(e => e.Tokens)];
        bool[] target = [.. examples.SelectMany(e => e.IsTarget)];
        const int T = 16;
        var rows = SequencePacker.Pack(examples, T, P);
        // Real inputs, concatenated, are the whole stream.
        Assert.Equal(stream, rows.SelectMany(r => r.InputIds.Take(r.Length)));
        Assert.All(rows, r => Assert.Equal(T, r.InputIds.Length));
        Assert.All(rows.SkipLast(1), r => Assert.Equal(T, r.Length));
        // Each label is the next stream token exactly where that token is a target.
        for (int k = 0; k < rows.Count; k++)
            for (int t = 0; t < T; t++)
            {
                int p = k * T + t;
                int expected = p + 1 < stream.Length && target[p + 1] ? stream[p + 1] : X;
                Assert.Equal(expected, rows[k].Labels[t]);
            }
        Assert.Equal(target.Skip(1).Count(x => x), rows.Sum(r => r.TargetCount));
    }

    [Fact]
    public void PaddedRowMasksPromptAndPadding()
    {
        var r = SequencePadder.Pad([Ex(DatasetRecord.FromPromptCompletion("ab", "c"))], 6, P, TruncationPolicy.Error, "d.jsonl");
        var row = Assert.Single(r.Rows);
        // Tokens B a b c E: inputs are the first four, labels predict c then E.
        Assert.Equal([B, 'a', 'b', 'c', P, P], row.InputIds);
        Assert.Equal([X, X, 'c', E, X, X], row.Labels);
        Assert.Equal(4, row.Length);
    }

    [Fact]
    public void PaddedRowsKeepInvariants()
    {
        var examples = Enumerable.Range(1, 20).Select(i => Ex(DatasetRecord.FromPromptCompletion(new string('p', i % 6), new string('c', i % 4 + 1)))).ToList();
        var r = SequencePadder.Pad(examples, 12, P, TruncationPolicy.Error, "d.jsonl");
        Assert.Equal(20, r.Rows.Count);
        for (int i = 0; i < 20; i++)
        {
            TrainingRow row = r.Rows[i];
            TokenizedExample e = examples[i];
            Assert.Equal(e.Tokens.Length - 1, row.Length);
            Assert.Equal(e.Tokens.Take(row.Length), row.InputIds.Take(row.Length));
            Assert.All(row.InputIds.Skip(row.Length), id => Assert.Equal(P, id));
            Assert.All(row.Labels.Skip(row.Length), l => Assert.Equal(X, l));
            Assert.Equal(e.TargetCount, row.TargetCount);
        }
    }

    [Fact]
    public void TooLongExampleFollowsTheTruncationPolicy()
    {
        TokenizedExample[] examples = [Ex(DatasetRecord.FromText("abcdefgh"), line: 7), Ex(DatasetRecord.FromText("ab"), line: 8)];
        // "abcdefgh" is 10 tokens with BOS and EOS; a row of 4 holds 5.
        var e = Assert.Throws<DatasetFormatException>(() => SequencePadder.Pad(examples, 4, P, TruncationPolicy.Error, "d.jsonl"));
        Assert.Equal(7, Assert.Single(e.Errors).Line);
        Assert.Contains("10 tokens", e.Message);
        Assert.Contains("sequence length 4", e.Message);
        Assert.Contains("d.jsonl", e.Message);

        var kept = SequencePadder.Pad(examples, 4, P, TruncationPolicy.KeepStart, "d.jsonl");
        Assert.Equal((2, 1, 0), (kept.Rows.Count, kept.Truncated, kept.Dropped));
        Assert.Equal([B, 'a', 'b', 'c'], kept.Rows[0].InputIds);
        Assert.Equal(['a', 'b', 'c', 'd'], kept.Rows[0].Labels);

        var dropped = SequencePadder.Pad(examples, 4, P, TruncationPolicy.Drop, "d.jsonl");
        Assert.Equal((1, 0, 1), (dropped.Rows.Count, dropped.Truncated, dropped.Dropped));
    }

    [Fact]
    public void TruncationThatCutsAwayTheWholeCompletionDropsTheExample()
    {
        var r = SequencePadder.Pad([Ex(DatasetRecord.FromPromptCompletion("long prompt", "c"))], 4, P, TruncationPolicy.KeepStart, "d.jsonl");
        Assert.Empty(r.Rows);
        Assert.Equal(1, r.Dropped);
    }

    [Fact]
    public void MicroBatchIsRowMajor()
    {
        var rows = SequencePacker.Pack([Ex(DatasetRecord.FromText("abcdefg"))], 4, P);
        var batch = MicroBatch.FromRows(rows);
        Assert.Equal((2, 4), (batch.BatchSize, batch.SequenceLength));
        Assert.Equal([B, 'a', 'b', 'c', 'd', 'e', 'f', 'g'], batch.InputIds);
        Assert.Equal(['a', 'b', 'c', 'd', 'e', 'f', 'g', E], batch.Labels);
        Assert.Equal(8, batch.TargetCount);
        Assert.Equal(8, batch.TokenCount);
    }
}
