using System.Text;

namespace QuantPeft.Trainers.Data.Demo;

/// <summary>
/// A synthetic pre-training corpus for the built-in byte-level demo model: English-like templated
/// sentences, arithmetic facts and key: value records, generated from a seed. Small models learn its
/// regularities quickly, and sentences that repeat a name or a phrase teach the copying (induction)
/// that the fine-tuning task then builds on.
/// </summary>
/// <remarks>
/// Deliberately absent, so that the fine-tuning task (<see cref="UpperCaseTask"/>) is new to a model
/// pre-trained on this corpus: the marker <c>=&gt;</c>, the word <c>upper</c>, and any run of two or
/// more capital letters (only the first letter of a sentence or a name is a capital).
/// </remarks>
public static class DemoPretrainCorpus
{
    private static readonly string[] Nouns =
        ["cat", "dog", "bird", "tree", "river", "stone", "house", "road", "lamp", "boat", "cloud", "apple", "book", "chair", "garden", "window",
         "horse", "bread", "song", "letter", "hill", "field", "cup", "door", "map", "key", "coin", "ship", "market", "bridge"];
    private static readonly string[] Adjectives =
        ["small", "big", "red", "green", "old", "new", "quiet", "bright", "dark", "warm", "cold", "tall", "short", "happy", "slow", "fast", "soft", "round"];
    private static readonly string[] Verbs =
        ["sees", "finds", "likes", "carries", "paints", "follows", "watches", "builds", "opens", "keeps", "draws", "moves"];
    private static readonly string[] Colors = ["red", "blue", "green", "yellow", "white", "black", "brown", "grey"];
    private static readonly string[] Syllables =
        ["ka", "lo", "mi", "ra", "ten", "vo", "sa", "ri", "na", "del", "to", "ber", "li", "an", "mo", "ze", "fi", "qua", "ro", "el"];

    /// <summary>Documents (<c>{"text"}</c> records) of about 200–600 bytes until <paramref name="targetBytes"/> UTF-8 bytes are reached.</summary>
    public static IEnumerable<DatasetRecord> Generate(long seed, long targetBytes)
    {
        var rng = SeededRandom.Derive(seed, purpose: 100);
        long written = 0;
        var doc = new StringBuilder();
        while (written < targetBytes)
        {
            doc.Clear();
            int sentences = rng.Next(3, 9);
            for (int i = 0; i < sentences; i++)
            {
                if (i > 0) doc.Append(rng.Next(4) == 0 ? '\n' : ' ');
                AppendPiece(doc, rng);
            }
            string text = doc.ToString();
            written += Encoding.UTF8.GetByteCount(text);
            yield return DatasetRecord.FromText(text);
        }
    }

    private static void AppendPiece(StringBuilder sb, SeededRandom rng)
    {
        switch (rng.Next(7))
        {
            case 0:
                sb.Append(Capital($"the {rng.Pick(Adjectives)} {rng.Pick(Nouns)} {rng.Pick(Verbs)} the {rng.Pick(Nouns)}."));
                break;
            case 1:
            {
                string name = Name(rng), place = Name(rng);
                sb.Append($"{name} lives in {place}. {name} likes the {rng.Pick(Adjectives)} {rng.Pick(Nouns)}.");
                break;
            }
            case 2:
            {
                int a = rng.Next(0, 100), b = rng.Next(0, 100);
                sb.Append(rng.Next(2) == 0 ? $"{a} + {b} = {a + b}." : $"{a % 13} times {b % 13} is {a % 13 * (b % 13)}.");
                break;
            }
            case 3:
                sb.Append($"name: {Name(rng)}\ncity: {Name(rng)}\nage: {rng.Next(1, 90)}\ncolor: {rng.Pick(Colors)}\n");
                break;
            case 4:
            {
                // Repetition teaches copying: the second half is predictable only by looking back.
                // Half the time the words are random letters, so copying must not rely on known syllables.
                bool letters = rng.Next(2) == 0;
                string w1 = letters ? Letters(rng) : Word(rng), w2 = letters ? Letters(rng) : Word(rng);
                sb.Append($"{Name(rng)} said {w1} {w2}, and again: {w1} {w2}.");
                break;
            }
            case 5:
            {
                int n = rng.Next(2, 10);
                sb.Append($"{Name(rng)} has {n} {rng.Pick(Nouns)}s and gives {rng.Next(1, n)} away.");
                break;
            }
            default:
                sb.Append(Capital($"a {rng.Pick(Colors)} {rng.Pick(Nouns)} is near the {rng.Pick(Nouns)}."));
                break;
        }
    }

    private static string Word(SeededRandom rng)
    {
        int parts = rng.Next(1, 4);
        var sb = new StringBuilder();
        for (int i = 0; i < parts; i++) sb.Append(rng.Pick(Syllables));
        return sb.ToString();
    }

    private static string Letters(SeededRandom rng)
    {
        while (true)
        {
            var chars = new char[rng.Next(2, 8)];
            for (int i = 0; i < chars.Length; i++) chars[i] = (char)('a' + rng.Next(26));
            var s = new string(chars);
            if (!s.Contains("upper", StringComparison.Ordinal)) return s;
        }
    }

    private static string Name(SeededRandom rng) => Capital(Word(rng) + (rng.Next(2) == 0 ? "" : rng.Pick(Syllables)));

    private static string Capital(string s) => char.ToUpperInvariant(s[0]) + s[1..];
}
