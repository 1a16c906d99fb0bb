using QuantPeft.Trainers.Tokenizers;

namespace QuantPeft.Trainers.Data;

/// <summary>
/// A preference dataset prepared for training: pairs read and validated, split into train and eval by pairs,
/// each encoded as a chosen row and a rejected row. A micro-batch of B pairs is one <see cref="MicroBatch"/> of
/// 2B rows, the B chosen rows first and the B rejected rows after them in the same order, so both answers of a
/// pair go through one forward.
/// </summary>
public sealed class PreferenceDataset
{
    private readonly long _seed;

    private PreferenceDataset(List<(TrainingRow, TrainingRow)> train, List<(TrainingRow, TrainingRow)> eval, int records, long seed)
    {
        TrainPairs = train;
        EvalPairs = eval;
        Records = records;
        _seed = seed;
    }

    /// <summary>Train pairs (chosen row, rejected row) in file order.</summary>
    public IReadOnlyList<(TrainingRow Chosen, TrainingRow Rejected)> TrainPairs { get; }

    /// <summary>Held-out pairs in file order.</summary>
    public IReadOnlyList<(TrainingRow Chosen, TrainingRow Rejected)> EvalPairs { get; }

    /// <summary>Records read from the file(s).</summary>
    public int Records { get; }

    /// <summary>Reads <paramref name="path"/> (and <paramref name="evalPath"/>, if given) and prepares the pairs.</summary>
    /// <param name="path">The training JSONL.</param>
    /// <param name="evalPath">A separate eval JSONL, or null to hold out <paramref name="evalFraction"/> of <paramref name="path"/>.</param>
    /// <param name="tokenizer">The model's tokenizer.</param>
    /// <param name="template">The chat template for conversation records.</param>
    /// <param name="sequenceLength">Positions per row (<c>--seq</c>).</param>
    /// <param name="evalFraction">Share of pairs held out when there is no eval file.</param>
    /// <param name="seed">Seed of the split and of the per-epoch order.</param>
    /// <exception cref="DatasetFormatException">A bad line, or a pair that does not fit a row; names the file and line.</exception>
    public static PreferenceDataset Load(string path, string? evalPath, ITextTokenizer tokenizer, ChatTemplate template,
        int sequenceLength, double evalFraction, long seed)
    {
        var records = PreferenceDatasetReader.Read(path);
        var evalRecords = evalPath is null ? null : PreferenceDatasetReader.Read(evalPath);
        return FromRecords(records, path, evalRecords, evalPath, tokenizer, template, sequenceLength, evalFraction, seed);
    }

    /// <summary>Prepares records already in memory; the names stand for the files in errors.</summary>
    public static PreferenceDataset FromRecords(IReadOnlyList<PreferenceRecord> records, string sourceName,
        IReadOnlyList<PreferenceRecord>? evalRecords, string? evalSourceName, ITextTokenizer tokenizer, ChatTemplate template,
        int sequenceLength, double evalFraction, long seed)
    {
        var encoder = new PreferenceEncoder(tokenizer, template, sequenceLength);
        int[] trainIdx, evalIdx;
        if (evalRecords is null) (trainIdx, evalIdx) = DatasetSplit.Split(records.Count, evalFraction, seed);
        else (trainIdx, evalIdx) = ([.. Enumerable.Range(0, records.Count)], []);
        var train = trainIdx.Select(i => encoder.Encode(records[i], sourceName)).ToList();
        var eval = evalRecords is null
            ? evalIdx.Select(i => encoder.Encode(records[i], sourceName)).ToList()
            : evalRecords.Select(r => encoder.Encode(r, evalSourceName!)).ToList();
        if (train.Count == 0) throw new DatasetFormatException(sourceName, "no training pairs");
        return new PreferenceDataset(train, eval, records.Count + (evalRecords?.Count ?? 0), seed);
    }

    /// <summary>Train micro-batches of B pairs per epoch.</summary>
    public int TrainBatchCount(int pairsPerBatch) => (TrainPairs.Count + pairsPerBatch - 1) / pairsPerBatch;

    /// <summary>Train micro-batches of epoch <paramref name="epoch"/>: pairs in an order seeded by (seed, epoch), the same on every run.</summary>
    public IEnumerable<MicroBatch> TrainBatches(int pairsPerBatch, int epoch)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(pairsPerBatch, 1);
        int[] order = [.. Enumerable.Range(0, TrainPairs.Count)];
        SeededRandom.Derive(_seed, purpose: 3000 + epoch).Shuffle(order);
        return Batches(order.Select(i => TrainPairs[i]), pairsPerBatch);
    }

    /// <summary>Eval micro-batches in file order.</summary>
    public IEnumerable<MicroBatch> EvalBatches(int pairsPerBatch) => Batches(EvalPairs, pairsPerBatch);

    private static IEnumerable<MicroBatch> Batches(IEnumerable<(TrainingRow Chosen, TrainingRow Rejected)> pairs, int size)
    {
        foreach (var chunk in pairs.Chunk(size))
            yield return MicroBatch.FromRows([.. chunk.Select(p => p.Chosen), .. chunk.Select(p => p.Rejected)]);
    }
}
