using QuantPeft.Trainers.Tokenizers;

namespace QuantPeft.Trainers.Data;

/// <summary>One previewed example: the text the model sees and the character spans it is trained on.</summary>
/// <param name="Line">1-based line of the record in its file.</param>
/// <param name="Text">The rendered text (BOS/EOS written by a template appear as their text; ids the encoder adds do not).</param>
/// <param name="Tokens">Tokens of the encoded example, BOS and EOS included, before truncation.</param>
/// <param name="Trained">[start, end) character spans of <paramref name="Text"/> whose tokens are loss targets.</param>
/// <param name="Fate">"kept", "truncated" (keep-start) or "dropped" (drop) for an example longer than a row.</param>
public sealed record PreviewExample(int Line, string Text, int Tokens, IReadOnlyList<(int Start, int End)> Trained, string Fate);

/// <summary>What <c>qpeft data preview</c> shows: the first examples and the totals of the whole file as training prepares it.</summary>
/// <param name="Examples">The first examples in file order.</param>
/// <param name="Stats">The whole file prepared with the same options as <c>qpeft train</c> (rows, tokens, targets, truncated, dropped).</param>
/// <param name="TemplateReason">Which chat template renders conversations, and from where.</param>
public sealed record DataPreviewResult(IReadOnlyList<PreviewExample> Examples, DatasetStats Stats, string TemplateReason);

/// <summary>
/// Renders records the way training encodes them, so a user can check the template and the loss mask before a long run.
/// The totals come from <see cref="TrainingDataset"/> itself with the options training uses, so they cannot drift from it.
/// </summary>
public static class DataPreview
{
    /// <summary>Previews the first <paramref name="rows"/> records of <paramref name="path"/>.</summary>
    /// <exception cref="DatasetFormatException">Bad lines, records the template refuses, or (truncation error) examples too long.</exception>
    public static DataPreviewResult Run(string path, ITextTokenizer tokenizer, ChatTemplate template, DatasetOptions options, int maxPositionEmbeddings, int rows)
    {
        options.Validate(maxPositionEmbeddings);
        IReadOnlyList<DatasetRecord> records = JsonlDatasetReader.Read(path, options.Fields);
        TrainingDataset prepared = TrainingDataset.FromRecords(records, path, tokenizer, options with { EvalFraction = 0 }, template);
        var encoder = new ExampleEncoder(tokenizer, template, options.AddBos, options.AddEos);
        var examples = new List<PreviewExample>();
        foreach (DatasetRecord r in records.Take(rows))
        {
            int tokens = encoder.Encode(r).Tokens.Length;
            string fate = tokens <= options.SequenceLength + 1 || prepared.Stats.Layout == RowLayout.Packed ? "kept"
                : options.Truncation == TruncationPolicy.KeepStart ? "truncated" : "dropped";
            (string text, IReadOnlyList<(int, int)> trained) = r.Kind switch
            {
                RecordKind.Text => (r.Text!, [(0, r.Text!.Length)]),
                RecordKind.PromptCompletion => (r.Prompt + r.Completion, [(r.Prompt!.Length, r.Prompt.Length + r.Completion!.Length)]),
                _ => Conversation(template.RenderConversation(r.Messages!)),
            };
            examples.Add(new PreviewExample(r.Line, text, tokens, trained, fate));
        }
        return new DataPreviewResult(examples, prepared.Stats, template.Reason);
    }

    private static (string, IReadOnlyList<(int, int)>) Conversation(RenderedConversation c) => (c.Text, c.Trained);
}
