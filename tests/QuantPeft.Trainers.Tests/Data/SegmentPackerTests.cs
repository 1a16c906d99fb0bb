using QuantPeft.Trainers.Data;
using QuantPeft.Trainers.Tokenizers;

namespace QuantPeft.Trainers.Tests.Data;

/// <summary>Packing that keeps examples apart, against layouts worked out by hand.</summary>
public class SegmentPackerTests
{
    private const int B = 256, E = 257, P = 258, X = TrainingRow.IgnoreIndex;
    private static readonly ExampleEncoder Encoder = new(ByteLevelTokenizer.Instance, ChatTemplate.Default);

    private static TokenizedExample Text(string s, int line = 0) => Encoder.Encode(DatasetRecord.FromText(s) with { Line = line });

    [Fact]
    public void ExamplesKeepTheirOwnLabelsAndTheRowRecordsWhereEachStarts()
    {
        // "a" = B a E (2 positions), "bc" = B b c E (3), "d" = B d E (2); T = 5. First fit: a and bc fill row 0, d opens row 1.
        // Each example's last position predicts its own EOS, never the next example's BOS.
        var r = SegmentPacker.Pack([Text("a"), Text("bc"), Text("d")], 5, P, TruncationPolicy.Error, "d.jsonl");
        Assert.Equal(2, r.Rows.Count);
        Assert.Equal([B, 'a', B, 'b', 'c'], r.Rows[0].InputIds);
        Assert.Equal(['a', E, 'b', 'c', E], r.Rows[0].Labels);
        Assert.Equal([2, 3], r.Rows[0].Segments!);
        Assert.Equal(5, r.Rows[0].Length);
        Assert.Equal([B, 'd', P, P, P], r.Rows[1].InputIds);
        Assert.Equal(['d', E, X, X, X], r.Rows[1].Labels);
        Assert.Equal([2], r.Rows[1].Segments!);
    }

    [Fact]
    public void PositionIdsRestartAtEveryExampleAndTheTailIsASegmentOfItsOwn()
    {
        var rows = SegmentPacker.Pack([Text("a"), Text("bc"), Text("d")], 5, P, TruncationPolicy.Error, "d.jsonl").Rows;
        var batch = MicroBatch.FromRows(rows);
        Assert.Equal([0, 0, 1, 1, 1, /* row 1 */ 0, 0, 1, 1, 1], batch.SegmentIds!);
        Assert.Equal([0, 1, 0, 1, 2, /* row 1 */ 0, 1, 0, 1, 2], batch.PositionIds!);
        Assert.Equal(7, batch.TargetCount);
    }

    [Fact]
    public void PaddedBatchesCarryNoSegments()
    {
        var rows = SequencePadder.Pad([Text("a"), Text("bc")], 5, P, TruncationPolicy.Error, "d.jsonl").Rows;
        var batch = MicroBatch.FromRows(rows);
        Assert.Null(batch.SegmentIds!);
        Assert.Null(batch.PositionIds!);
    }

    [Fact]
    public void ALaterShortExampleFillsTheFirstRowWithRoom()
    {
        // T = 5: "ab" (3 positions) opens row 0, "cd" (3) does not fit its 2 free positions and opens row 1, "efg" (4)
        // opens row 2; "h" (2) goes to the first row with room, row 0, not the newest.
        TokenizedExample[] examples = [Text("ab"), Text("cd"), Text("efg"), Text("h")];
        var r = SegmentPacker.Pack(examples, 5, P, TruncationPolicy.Error, "d.jsonl");
        Assert.Equal(3, r.Rows.Count);
        Assert.Equal([3, 2], r.Rows[0].Segments!);
        Assert.Equal([B, 'a', 'b', B, 'h'], r.Rows[0].InputIds);
        Assert.Equal([3], r.Rows[1].Segments!);
        Assert.Equal([4], r.Rows[2].Segments!);
        // The same targets as padding the same examples.
        var padded = SequencePadder.Pad(examples, 5, P, TruncationPolicy.Error, "d.jsonl");
        Assert.Equal(padded.Rows.Sum(x => x.TargetCount), r.Rows.Sum(x => x.TargetCount));
    }

    [Fact]
    public void TooLongExamplesFollowTheTruncationPolicyAsPaddingDoes()
    {
        var e = Assert.Throws<DatasetFormatException>(() =>
            SegmentPacker.Pack([Text("a"), Text("abcdefgh", line: 7)], 4, P, TruncationPolicy.Error, "d.jsonl"));
        Assert.Contains("d.jsonl", e.Message);
        Assert.Contains("line 7", e.Message);
        var kept = SegmentPacker.Pack([Text("a"), Text("abcdefgh")], 4, P, TruncationPolicy.KeepStart, "d.jsonl");
        Assert.Equal(1, kept.Truncated);
        var dropped = SegmentPacker.Pack([Text("a"), Text("abcdefgh")], 4, P, TruncationPolicy.Drop, "d.jsonl");
        Assert.Equal(1, dropped.Dropped);
        Assert.Equal([2], Assert.Single(dropped.Rows).Segments!);
    }

    [Fact]
    public void ByShapePacksTextAndPadsEverythingElse()
    {
        IReadOnlyList<DatasetRecord> text = [DatasetRecord.FromText("a"), DatasetRecord.FromText("b")];
        IReadOnlyList<DatasetRecord> mixed = [DatasetRecord.FromText("a"), DatasetRecord.FromPromptCompletion("p", "c")];
        Assert.Equal(RowLayout.Segmented, TrainingDataset.Resolve(RowLayout.ByShape, text));
        Assert.Equal(RowLayout.Padded, TrainingDataset.Resolve(RowLayout.ByShape, mixed));
        Assert.Equal(RowLayout.Packed, TrainingDataset.Resolve(RowLayout.Packed, text));
        var data = TrainingDataset.FromRecords([.. Enumerable.Range(0, 10).Select(i => DatasetRecord.FromText(new string('x', i + 1)))], "t.jsonl",
            ByteLevelTokenizer.Instance, new DatasetOptions { SequenceLength = 16, Layout = RowLayout.ByShape });
        Assert.Equal(RowLayout.Segmented, data.Stats.Layout);
        Assert.Equal(10, data.Stats.TrainExamples);
        // 10 examples of 2..11 positions (65 in all) in rows of 16: at least 5 rows, density 65 / (rows · 16).
        Assert.Equal(65, data.Stats.TrainTokens);
        Assert.Equal(65.0 / (data.Stats.TrainRows * 16), data.Stats.Density, 12);
        Assert.InRange(data.Stats.TrainRows, 5, 6);
    }
}
