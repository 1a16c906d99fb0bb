namespace QuantPeft.Trainers.Data;

/// <summary>How tokenized examples become fixed-length rows.</summary>
public enum RowLayout
{
    /// <summary>
    /// Examples are concatenated (each closed by EOS) and cut into full rows, attending across example boundaries as in
    /// GPT-style pre-training (the demo's pre-training corpus); no compute is spent on padding.
    /// </summary>
    Packed,
    /// <summary>One example per row, filled with PAD up to the sequence length; padded positions have label −100.</summary>
    Padded,
    /// <summary>
    /// Several whole examples per row, kept apart (<see cref="SegmentPacker"/>): position ids restart at each example and
    /// attention stays within it, so each example's loss equals its padded one (<c>--packing on</c>).
    /// </summary>
    Segmented,
    /// <summary>
    /// <see cref="Segmented"/> when every record is plain text, <see cref="Padded"/> otherwise (the default of
    /// <c>qpeft train</c>; docs/data.md says why).
    /// </summary>
    ByShape,
}

/// <summary>
/// What to do with an example longer than a padded or segmented row (the <see cref="RowLayout.Packed"/> stream never
/// truncates: it continues the example in the next row).
/// </summary>
public enum TruncationPolicy
{
    /// <summary>Fail, naming the file, line and both lengths.</summary>
    Error,
    /// <summary>Keep the first tokens; an example left with no target is dropped.</summary>
    KeepStart,
    /// <summary>Leave the example out.</summary>
    Drop,
}

/// <summary>Options of <see cref="TrainingDataset"/>; validated once by <see cref="Validate"/>.</summary>
public sealed record DatasetOptions
{
    /// <summary>Input positions per row (the model's sequence length T).</summary>
    public int SequenceLength { get; init; } = 512;

    /// <summary>Packed or padded rows.</summary>
    public RowLayout Layout { get; init; } = RowLayout.Packed;

    /// <summary>Policy for examples longer than a padded row.</summary>
    public TruncationPolicy Truncation { get; init; } = TruncationPolicy.Error;

    /// <summary>Start every example with BOS when the tokenizer has one.</summary>
    public bool AddBos { get; init; } = true;

    /// <summary>End every example with EOS (a loss target) unless it already ends with it.</summary>
    public bool AddEos { get; init; } = true;

    /// <summary>Fraction of records held out for evaluation, in [0, 1).</summary>
    public double EvalFraction { get; init; }

    /// <summary>The names of the fields in the JSONL files (for columns named differently).</summary>
    public DatasetFields Fields { get; init; } = DatasetFields.Default;

    /// <summary>Seed of the split and of every shuffle.</summary>
    public long Seed { get; init; }

    /// <summary>Checks the options against themselves and against the model's position limit.</summary>
    /// <param name="maxPositionEmbeddings">The model's <c>max_position_embeddings</c>.</param>
    /// <exception cref="DatasetOptionsException">An option is out of range; the message names it and both numbers.</exception>
    public void Validate(int maxPositionEmbeddings)
    {
        if (SequenceLength < 1)
            throw new DatasetOptionsException($"sequence length must be at least 1; found {SequenceLength}");
        if (SequenceLength > maxPositionEmbeddings)
            throw new DatasetOptionsException($"sequence length {SequenceLength} exceeds the model's max_position_embeddings {maxPositionEmbeddings}");
        if (!(EvalFraction >= 0 && EvalFraction < 1))
            throw new DatasetOptionsException($"eval fraction must be in [0, 1); found {EvalFraction}");
        if (!Enum.IsDefined(Layout))
            throw new DatasetOptionsException($"row layout must be Packed, Padded, Segmented or ByShape; found {(int)Layout}");
        if (!Enum.IsDefined(Truncation))
            throw new DatasetOptionsException($"truncation policy must be Error, KeepStart or Drop; found {(int)Truncation}");
    }
}
