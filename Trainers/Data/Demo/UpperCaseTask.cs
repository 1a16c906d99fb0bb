namespace QuantPeft.Trainers.Data.Demo;

/// <summary>
/// The demo fine-tuning task: <c>upper: word =&gt; </c> → <c>WORD</c>, for random lower-case words of
/// 3–6 letters. A model pre-trained on <see cref="DemoPretrainCorpus"/> has never seen the marker or
/// an all-capital word, so it scores near zero before fine-tuning; the task needs only copying (which
/// the corpus teaches) plus a fixed 26-letter mapping, which is meant to be within reach of a small
/// LoRA in a few hundred steps. Train and eval words are disjoint, so eval measures the rule, not memorised pairs.
/// </summary>
public static class UpperCaseTask
{
    /// <summary>The text before the word; marks the task in a prompt.</summary>
    public const string Marker = "upper: ";

    /// <summary>The text between the word and the answer.</summary>
    public const string Arrow = " => ";

    /// <summary>The prompt for <paramref name="word"/>.</summary>
    public static string Prompt(string word) => Marker + word + Arrow;

    /// <summary>
    /// <paramref name="trainCount"/> training and <paramref name="evalCount"/> eval records with distinct
    /// words (no word in both), the same for the same seed.
    /// </summary>
    public static (IReadOnlyList<DatasetRecord> Train, IReadOnlyList<DatasetRecord> Eval) Generate(long seed, int trainCount, int evalCount)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(trainCount);
        ArgumentOutOfRangeException.ThrowIfNegative(evalCount);
        var rng = SeededRandom.Derive(seed, purpose: 200);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var records = new List<DatasetRecord>(trainCount + evalCount);
        while (records.Count < trainCount + evalCount)
        {
            int length = rng.Next(3, 7);
            var chars = new char[length];
            for (int i = 0; i < length; i++) chars[i] = (char)('a' + rng.Next(26));
            string word = new(chars);
            if (seen.Add(word))
                records.Add(DatasetRecord.FromPromptCompletion(Prompt(word), word.ToUpperInvariant()));
        }
        return (records[..trainCount], records[trainCount..]);
    }

    /// <summary>
    /// Exact-match accuracy: the share of <paramref name="evalRecords"/> whose completion equals, character
    /// for character, what <paramref name="generate"/> returns for the prompt (greedy decoding up to EOS).
    /// </summary>
    public static double ExactMatchAccuracy(IReadOnlyList<DatasetRecord> evalRecords, Func<string, string> generate)
    {
        if (evalRecords.Count == 0) return 0;
        int hits = evalRecords.Count(r => string.Equals(generate(r.Prompt!), r.Completion, StringComparison.Ordinal));
        return (double)hits / evalRecords.Count;
    }
}
