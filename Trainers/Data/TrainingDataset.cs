using QuantPeft.Trainers.Tokenizers;

namespace QuantPeft.Trainers.Data;

/// <summary>Counts of one prepared dataset, for the run report.</summary>
/// <param name="Records">Records read.</param>
/// <param name="TrainRecords">Records on the train side of the split.</param>
/// <param name="EvalRecords">Records held out for evaluation.</param>
/// <param name="TrainRows">Rows of T positions for training.</param>
/// <param name="EvalRows">Rows for evaluation.</param>
/// <param name="Truncated">Examples shortened (padded layout, keep-start).</param>
/// <param name="Dropped">Examples left out (too long under drop, or no target left).</param>
/// <param name="TrainTokens">Real input tokens in the train rows.</param>
/// <param name="TrainTargets">Positions that take a loss in the train rows.</param>
public sealed record DatasetStats(int Records, int TrainRecords, int EvalRecords, int TrainRows, int EvalRows,
    int Truncated, int Dropped, long TrainTokens, long TrainTargets)
{
    /// <summary>Assistant turns a Jinja template renders differently once later turns follow, left untrained (see <see cref="ChatTemplate.RenderConversation"/>).</summary>
    public int UntrainedTurns { get; init; }

    /// <summary>The layout the rows were made in (<see cref="RowLayout.ByShape"/> resolved).</summary>
    public RowLayout Layout { get; init; } = RowLayout.Padded;

    /// <summary>Positions per row (T).</summary>
    public int SequenceLength { get; init; }

    /// <summary>Fraction of the train rows' positions that hold real tokens: <c>TrainTokens / (TrainRows · T)</c>.</summary>
    public double Density => TrainRows == 0 || SequenceLength == 0 ? 0 : (double)TrainTokens / ((long)TrainRows * SequenceLength);

    /// <summary>Examples the train rows hold (several per row when segmented, one per row when padded).</summary>
    public int TrainExamples { get; init; }
}

/// <summary>
/// A JSONL dataset prepared for training: read and validated, split into train and eval by records
/// (so no example leaks across), tokenized, laid out as packed or padded rows, and served as
/// micro-batches. Train rows are reshuffled each epoch from the seed; eval rows keep file order.
/// </summary>
public sealed class TrainingDataset
{
    private readonly long _seed;

    private TrainingDataset(List<TrainingRow> train, List<TrainingRow> eval, IReadOnlyList<DatasetRecord> evalRecords, DatasetStats stats, long seed)
    {
        TrainRows = train;
        EvalRows = eval;
        EvalRecords = evalRecords;
        Stats = stats;
        _seed = seed;
    }

    /// <summary>Rows for training, in packing order (batches visit them in a per-epoch shuffled order).</summary>
    public IReadOnlyList<TrainingRow> TrainRows { get; }

    /// <summary>Rows for evaluation (eval loss / perplexity).</summary>
    public IReadOnlyList<TrainingRow> EvalRows { get; }

    /// <summary>The held-out records themselves, for generation-based metrics such as exact match.</summary>
    public IReadOnlyList<DatasetRecord> EvalRecords { get; }

    /// <summary>What preparation produced.</summary>
    public DatasetStats Stats { get; }

    /// <summary>Reads <paramref name="path"/> and prepares it.</summary>
    /// <param name="path">A JSONL file.</param>
    /// <param name="tokenizer">The model's tokenizer.</param>
    /// <param name="options">Layout, length, split and seed.</param>
    /// <param name="maxPositionEmbeddings">The model's <c>max_position_embeddings</c>; a longer sequence length is an error.</param>
    /// <param name="template">Renders <c>messages</c> records; <see cref="ChatTemplate.Default"/> when null.</param>
    /// <param name="evalPath">
    /// A separate JSONL file of eval records (a fixed benchmark set); then <see cref="DatasetOptions.EvalFraction"/>
    /// must be 0 and every record of <paramref name="path"/> is trained on.
    /// </param>
    /// <exception cref="DatasetFormatException">A file is missing or has bad lines, or (padded, truncation Error) an example is too long.</exception>
    /// <exception cref="DatasetOptionsException">The options are invalid or exceed the model's limit.</exception>
    public static TrainingDataset Load(string path, ITextTokenizer tokenizer, DatasetOptions options, int maxPositionEmbeddings,
        ChatTemplate? template = null, string? evalPath = null)
    {
        options.Validate(maxPositionEmbeddings);
        if (evalPath is not null && options.EvalFraction > 0)
            throw new DatasetOptionsException($"an eval file ('{evalPath}') and an eval fraction ({options.EvalFraction}) were both given; use one");
        IReadOnlyList<DatasetRecord> train = JsonlDatasetReader.Read(path, options.Fields);
        IReadOnlyList<DatasetRecord>? eval = evalPath is null ? null : JsonlDatasetReader.Read(evalPath, options.Fields);
        return Build(train, eval, path, evalPath ?? path, tokenizer, options, template);
    }

    /// <summary>Prepares records already in memory; <paramref name="sourceName"/> stands for the file in errors. Call <see cref="DatasetOptions.Validate"/> first.</summary>
    public static TrainingDataset FromRecords(IReadOnlyList<DatasetRecord> records, string sourceName, ITextTokenizer tokenizer, DatasetOptions options, ChatTemplate? template = null) =>
        Build(records, null, sourceName, sourceName, tokenizer, options, template);

    private static TrainingDataset Build(IReadOnlyList<DatasetRecord> records, IReadOnlyList<DatasetRecord>? evalFile, string sourceName, string evalSourceName,
        ITextTokenizer tokenizer, DatasetOptions options, ChatTemplate? template)
    {
        int[] trainIdx, evalIdx;
        IReadOnlyList<DatasetRecord> evalRecords;
        if (evalFile is null)
        {
            (trainIdx, evalIdx) = DatasetSplit.Split(records.Count, options.EvalFraction, options.Seed);
            evalRecords = [.. evalIdx.Select(i => records[i])];
        }
        else
        {
            trainIdx = [.. Enumerable.Range(0, records.Count)];
            evalIdx = [];
            evalRecords = evalFile;
        }
        // Shuffle before packing so that a row mixes examples from all over the file.
        SeededRandom.Derive(options.Seed, purpose: 2).Shuffle(trainIdx);
        var encoder = new ExampleEncoder(tokenizer, template ?? ChatTemplate.Default, options.AddBos, options.AddEos);
        int padId = tokenizer.PadId ?? tokenizer.EosId ?? 0;
        int truncated = 0, dropped = 0;
        int untrainedTurns = 0;
        RowLayout layout = Resolve(options.Layout, records);
        List<TrainingRow> Rows(IEnumerable<DatasetRecord> source, string name)
        {
            List<TokenizedExample> examples = Encode(encoder, template ?? ChatTemplate.Default, source, name, ref untrainedTurns);
            if (layout == RowLayout.Packed) return SequencePacker.Pack(examples, options.SequenceLength, padId);
            SequencePadder.Result r = layout == RowLayout.Segmented
                ? SegmentPacker.Pack(examples, options.SequenceLength, padId, options.Truncation, name)
                : SequencePadder.Pad(examples, options.SequenceLength, padId, options.Truncation, name);
            truncated += r.Truncated;
            dropped += r.Dropped;
            return r.Rows;
        }
        List<TrainingRow> train = Rows(trainIdx.Select(i => records[i]), sourceName);
        List<TrainingRow> eval = Rows(evalRecords, evalSourceName);
        if (train.Count == 0)
            throw new DatasetFormatException(sourceName, "no training rows: every example was dropped or has no loss target");
        var stats = new DatasetStats(records.Count + (evalFile?.Count ?? 0), trainIdx.Length, evalRecords.Count, train.Count, eval.Count, truncated, dropped,
            train.Sum(r => (long)r.Length), train.Sum(r => (long)r.TargetCount))
        {
            UntrainedTurns = untrainedTurns, Layout = layout, SequenceLength = options.SequenceLength,
            TrainExamples = layout == RowLayout.Packed ? trainIdx.Length : train.Sum(r => r.Segments?.Length ?? 1),
        };
        return new TrainingDataset(train, eval, evalRecords, stats, options.Seed);
    }

    /// <summary>
    /// <paramref name="layout"/>, with <see cref="RowLayout.ByShape"/> made concrete: segmented when every record is plain
    /// text (documents, where padding wastes the most and nothing marks a turn), padded otherwise.
    /// </summary>
    public static RowLayout Resolve(RowLayout layout, IReadOnlyList<DatasetRecord> records) =>
        layout != RowLayout.ByShape ? layout
        : records.Count > 0 && records.All(r => r.Kind == RecordKind.Text) ? RowLayout.Segmented : RowLayout.Padded;

    /// <summary>
    /// Encodes every record; a record the chat template refuses (it raises, or fails on the record's roles) is a bad line
    /// of <paramref name="sourceName"/>, reported like the reader's bad lines (the first few, and the count).
    /// </summary>
    internal static List<TokenizedExample> Encode(ExampleEncoder encoder, ChatTemplate template, IEnumerable<DatasetRecord> records, string sourceName,
        ref int untrainedTurns)
    {
        var examples = new List<TokenizedExample>();
        var errors = new List<DatasetLineError>();
        int bad = 0;
        foreach (DatasetRecord r in records)
        {
            try
            {
                examples.Add(encoder.Encode(r));
                if (r.Kind == RecordKind.Messages && template.Kind == ChatTemplateKind.Jinja)
                    untrainedTurns += template.RenderConversation(r.Messages!).UntrainedTurns;
            }
            catch (Templates.TemplateException e)
            {
                if (bad++ < DatasetFormatException.ReportedLines) errors.Add(new DatasetLineError(r.Line, e.Message));
            }
        }
        if (bad > 0) throw new DatasetFormatException(sourceName, [.. errors.OrderBy(x => x.Line)], bad);
        return examples;
    }

    /// <summary>Number of train micro-batches per epoch.</summary>
    public int TrainBatchCount(int microBatchSize) => (TrainRows.Count + microBatchSize - 1) / microBatchSize;

    /// <summary>
    /// Train micro-batches of epoch <paramref name="epoch"/>: the rows in an order seeded by (seed, epoch),
    /// the same on every run; the last batch may hold fewer rows.
    /// </summary>
    public IEnumerable<MicroBatch> TrainBatches(int microBatchSize, int epoch)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(microBatchSize, 1);
        int[] order = Enumerable.Range(0, TrainRows.Count).ToArray();
        SeededRandom.Derive(_seed, purpose: 1000 + epoch).Shuffle(order);
        return Batches(order.Select(i => TrainRows[i]), microBatchSize);
    }

    /// <summary>Eval micro-batches in file order.</summary>
    public IEnumerable<MicroBatch> EvalBatches(int microBatchSize)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(microBatchSize, 1);
        return Batches(EvalRows, microBatchSize);
    }

    private static IEnumerable<MicroBatch> Batches(IEnumerable<TrainingRow> rows, int size)
    {
        foreach (TrainingRow[] chunk in rows.Chunk(size))
            yield return MicroBatch.FromRows(chunk);
    }
}
