using QuantPeft.Trainers.Data;
using QuantPeft.Trainers.Tokenizers;

namespace QuantPeft.Trainers.Tests.Data;

public class TrainingDatasetTests
{
    private static string WriteDataset(TempDir dir, int n)
    {
        var records = Enumerable.Range(0, n).Select(i => DatasetRecord.FromPromptCompletion($"q{i} => ", $"a{i}"));
        string path = dir.File("d.jsonl");
        JsonlDatasetWriter.Write(path, records);
        return path;
    }

    [Theory]
    [InlineData(10, 0.25, 3)]
    [InlineData(100, 0.1, 10)]
    [InlineData(3, 0.01, 1)]
    [InlineData(10, 0.999, 9)]
    [InlineData(10, 0.0, 0)]
    [InlineData(7, 0.5, 4)]
    public void EvalCountRoundsAndKeepsBothSidesNonEmpty(int n, double fraction, int expected)
    {
        Assert.Equal(expected, DatasetSplit.EvalCount(n, fraction));
        (int[] train, int[] eval) = DatasetSplit.Split(n, fraction, seed: 5);
        Assert.Equal(expected, eval.Length);
        Assert.Equal(n - expected, train.Length);
        Assert.Equal(Enumerable.Range(0, n), train.Concat(eval).Order());
    }

    [Fact]
    public void SplitIsDeterministicForASeedAndDependsOnIt()
    {
        Assert.Equal(DatasetSplit.Split(1000, 0.1, 42).Eval, DatasetSplit.Split(1000, 0.1, 42).Eval);
        Assert.NotEqual(DatasetSplit.Split(1000, 0.1, 42).Eval, DatasetSplit.Split(1000, 0.1, 43).Eval);
    }

    [Fact]
    public void EvalFractionNeedsTwoRecords()
    {
        Assert.Throws<DatasetOptionsException>(() => DatasetSplit.EvalCount(1, 0.5));
    }

    [Fact]
    public void SequenceLengthBeyondTheModelNamesBothNumbers()
    {
        using var dir = new TempDir();
        string path = WriteDataset(dir, 4);
        var e = Assert.Throws<DatasetOptionsException>(() =>
            TrainingDataset.Load(path, ByteLevelTokenizer.Instance, new DatasetOptions { SequenceLength = 8192 }, maxPositionEmbeddings: 4096));
        Assert.Contains("8192", e.Message);
        Assert.Contains("4096", e.Message);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-0.1)]
    [InlineData(1.0)]
    public void InvalidOptionsAreRejected(double fraction)
    {
        var options = new DatasetOptions { SequenceLength = fraction == 0 ? 0 : 8, EvalFraction = fraction };
        Assert.Throws<DatasetOptionsException>(() => options.Validate(64));
    }

    [Fact]
    public void ShuffledBatchesAreDeterministicPerSeedAndEpoch()
    {
        using var dir = new TempDir();
        string path = WriteDataset(dir, 60);
        var options = new DatasetOptions { SequenceLength = 16, Layout = RowLayout.Padded, EvalFraction = 0.2, Seed = 7 };
        var a = TrainingDataset.Load(path, ByteLevelTokenizer.Instance, options, 64);
        var b = TrainingDataset.Load(path, ByteLevelTokenizer.Instance, options, 64);
        var c = TrainingDataset.Load(path, ByteLevelTokenizer.Instance, options with { Seed = 8 }, 64);
        static long[] Flat(TrainingDataset d, int epoch) => [.. d.TrainBatches(5, epoch).SelectMany(x => x.InputIds)];
        Assert.Equal(Flat(a, 0), Flat(b, 0));
        Assert.Equal(Flat(a, 3), Flat(b, 3));
        Assert.NotEqual(Flat(a, 0), Flat(a, 1));
        Assert.NotEqual(Flat(a, 0), Flat(c, 0));
        // A reshuffle visits the same rows.
        static string[] Rows(TrainingDataset d, int epoch) =>
            [.. d.TrainBatches(5, epoch).SelectMany(x => x.InputIds.Chunk(x.SequenceLength).Select(r => string.Join(",", r))).Order()];
        Assert.Equal(Rows(a, 0), Rows(a, 1));
    }

    [Fact]
    public void SplitSizesAndBatchShapesFollowTheOptions()
    {
        using var dir = new TempDir();
        string path = WriteDataset(dir, 50);
        var ds = TrainingDataset.Load(path, ByteLevelTokenizer.Instance,
            new DatasetOptions { SequenceLength = 16, Layout = RowLayout.Padded, EvalFraction = 0.1, Seed = 1 }, 64);
        Assert.Equal((50, 45, 5, 45, 5), (ds.Stats.Records, ds.Stats.TrainRecords, ds.Stats.EvalRecords, ds.Stats.TrainRows, ds.Stats.EvalRows));
        Assert.Equal(5, ds.EvalRecords.Count);
        var batches = ds.TrainBatches(4, 0).ToList();
        Assert.Equal(ds.TrainBatchCount(4), batches.Count);
        Assert.Equal([4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 1], batches.Select(x => x.BatchSize));
        Assert.All(batches, x => Assert.Equal(x.BatchSize * 16, x.InputIds.Length));
        // Eval rows are exactly the held-out records.
        var evalTexts = ds.EvalRows.Select(r => ByteLevelTokenizer.Instance.Decode([.. r.InputIds.Take(r.Length)]));
        Assert.Equal(ds.EvalRecords.Select(r => r.Prompt + r.Completion), evalTexts);
    }

    [Fact]
    public void PackedDatasetFillsRows()
    {
        using var dir = new TempDir();
        string path = WriteDataset(dir, 50);
        var ds = TrainingDataset.Load(path, ByteLevelTokenizer.Instance, new DatasetOptions { SequenceLength = 32, Seed = 3 }, 64);
        Assert.All(ds.TrainRows.SkipLast(1), r => Assert.Equal(32, r.Length));
        Assert.Equal(ds.TrainRows.Sum(r => r.Length), ds.Stats.TrainTokens);
    }
}
