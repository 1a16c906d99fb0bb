namespace QuantPeft.Trainers.Data.Demo;

/// <summary>
/// The demo preference task, on the prompts of <see cref="UpperCaseTask"/>: the chosen answer is the word in capitals,
/// the rejected one breaks the rule, either left in lower case or in capitals with its letters out of order. The rule
/// is the same for every word, so a policy that learns it ranks held-out pairs correctly; train and eval words are
/// disjoint.
/// </summary>
public static class UpperCasePreferenceTask
{
    /// <summary><paramref name="trainCount"/> training and <paramref name="evalCount"/> eval pairs, the same for the same seed.</summary>
    public static (IReadOnlyList<PreferenceRecord> Train, IReadOnlyList<PreferenceRecord> Eval) Generate(long seed, int trainCount, int evalCount)
    {
        var (train, eval) = UpperCaseTask.Generate(seed, trainCount, evalCount);
        var rng = SeededRandom.Derive(seed, purpose: 201);
        PreferenceRecord Pair(DatasetRecord r)
        {
            string chosen = r.Completion!;
            string word = chosen.ToLowerInvariant();
            string rejected = word;
            if (rng.Next(2) == 1)
            {
                var letters = chosen.ToCharArray();
                rng.Shuffle(letters);
                string shuffled = new(letters);
                if (shuffled != chosen) rejected = shuffled;
            }
            return PreferenceRecord.FromPrompt(r.Prompt!, chosen, rejected);
        }
        return ([.. train.Select(Pair)], [.. eval.Select(Pair)]);
    }
}
