using System.Text;
using System.Text.Json;
using Microsoft.ML.Tokenizers;

namespace QuantPeft.Trainers.Tokenizers;

/// <summary>The parts of a <c>tokenizer.json</c> that a byte-level BPE needs, checked field by field.</summary>
internal sealed class TokenizerJsonModel
{
    public required Dictionary<string, int> Vocab { get; init; }
    public required List<string> Merges { get; init; }
    public required Dictionary<string, int> AddedTokens { get; init; }
    public required List<int> SpecialIds { get; init; }
    public required string SplitPattern { get; init; }
    public required bool AddPrefixSpace { get; init; }
    public Normalizer? Normalizer { get; init; }
    public string? UnknownToken { get; init; }

    public bool TryGetId(string content, out int id) => AddedTokens.TryGetValue(content, out id) || Vocab.TryGetValue(content, out id);

    public static TokenizerJsonModel Parse(JsonElement root, string path)
    {
        if (root.ValueKind != JsonValueKind.Object)
            throw new TokenizerLoadException(path, $"expected a JSON object at the top level, found {root.ValueKind}");
        if (!root.TryGetProperty("model", out JsonElement model) || model.ValueKind != JsonValueKind.Object)
            throw new TokenizerLoadException(path, "missing object field 'model'");
        string? type = model.TryGetProperty("type", out JsonElement t) ? t.GetString() : null;
        if (type != "BPE")
            throw new TokenizerLoadException(path, $"field 'model.type': expected \"BPE\", found {(type is null ? "nothing" : $"\"{type}\"")}" +
                (type == "Unigram" ? " (load the folder's tokenizer.model with SentencePiece instead)" : ""));

        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        if (!model.TryGetProperty("vocab", out JsonElement v) || v.ValueKind != JsonValueKind.Object)
            throw new TokenizerLoadException(path, "missing object field 'model.vocab'");
        foreach (JsonProperty p in v.EnumerateObject())
        {
            if (p.Value.ValueKind != JsonValueKind.Number || !p.Value.TryGetInt32(out int id) || id < 0)
                throw new TokenizerLoadException(path, $"field 'model.vocab' entry \"{p.Name}\": expected a non-negative integer id, found {p.Value.GetRawText()}");
            vocab[p.Name] = id;
        }

        var merges = new List<string>();
        if (!model.TryGetProperty("merges", out JsonElement m) || m.ValueKind != JsonValueKind.Array)
            throw new TokenizerLoadException(path, "missing array field 'model.merges'");
        int index = 0;
        foreach (JsonElement e in m.EnumerateArray())
        {
            // tokenizers < 0.20 writes "a b"; newer versions write ["a", "b"]. Byte-level tokens never contain a space.
            string? merge = e.ValueKind switch
            {
                JsonValueKind.String when e.GetString()!.Split(' ').Length == 2 => e.GetString(),
                JsonValueKind.Array when e.GetArrayLength() == 2 && e[0].ValueKind == JsonValueKind.String && e[1].ValueKind == JsonValueKind.String
                    => e[0].GetString() + " " + e[1].GetString(),
                _ => null,
            };
            if (merge is null)
                throw new TokenizerLoadException(path, $"field 'model.merges[{index}]': expected \"left right\" or [\"left\", \"right\"], found {e.GetRawText()}");
            merges.Add(merge);
            index++;
        }

        var added = new Dictionary<string, int>(StringComparer.Ordinal);
        var special = new List<int>();
        if (root.TryGetProperty("added_tokens", out JsonElement a) && a.ValueKind == JsonValueKind.Array)
        {
            index = 0;
            foreach (JsonElement e in a.EnumerateArray())
            {
                if (e.ValueKind != JsonValueKind.Object || !e.TryGetProperty("id", out JsonElement idEl) || !idEl.TryGetInt32(out int id) || id < 0
                    || !e.TryGetProperty("content", out JsonElement c) || c.ValueKind != JsonValueKind.String)
                    throw new TokenizerLoadException(path, $"field 'added_tokens[{index}]': expected an object with integer 'id' and string 'content', found {e.GetRawText()}");
                added[c.GetString()!] = id;
                if (e.TryGetProperty("special", out JsonElement s) && s.ValueKind == JsonValueKind.True) special.Add(id);
                index++;
            }
        }

        (string pattern, bool prefix) = PreTokenizer(root, path);
        string? unk = model.TryGetProperty("unk_token", out JsonElement u) && u.ValueKind == JsonValueKind.String ? u.GetString() : null;
        return new TokenizerJsonModel
        {
            Vocab = vocab, Merges = merges, AddedTokens = added, SpecialIds = special,
            SplitPattern = pattern, AddPrefixSpace = prefix, Normalizer = NormalizerOf(root, path), UnknownToken = unk,
        };
    }

    private static (string Pattern, bool AddPrefixSpace) PreTokenizer(JsonElement root, string path)
    {
        if (!root.TryGetProperty("pre_tokenizer", out JsonElement pre) || pre.ValueKind != JsonValueKind.Object)
            throw new TokenizerLoadException(path, "field 'pre_tokenizer': expected a ByteLevel pre-tokenizer (only byte-level BPE is read from tokenizer.json)");
        var parts = TypeOf(pre) == "Sequence" && pre.TryGetProperty("pretokenizers", out JsonElement list) && list.ValueKind == JsonValueKind.Array
            ? list.EnumerateArray().ToList() : [pre];
        string? split = null;
        bool byteLevel = false, useRegex = false, prefix = false;
        foreach (JsonElement p in parts)
        {
            switch (TypeOf(p))
            {
                case "ByteLevel":
                    byteLevel = true;
                    useRegex = !p.TryGetProperty("use_regex", out JsonElement r) || r.ValueKind != JsonValueKind.False;
                    prefix = p.TryGetProperty("add_prefix_space", out JsonElement s) && s.ValueKind == JsonValueKind.True;
                    break;
                case "Split" when p.TryGetProperty("pattern", out JsonElement pat) && pat.ValueKind == JsonValueKind.Object
                                  && pat.TryGetProperty("Regex", out JsonElement rx) && rx.ValueKind == JsonValueKind.String:
                    if (split is not null)
                        throw new TokenizerLoadException(path, "field 'pre_tokenizer': more than one Split regex is not supported");
                    split = rx.GetString();
                    break;
                default:
                    throw new TokenizerLoadException(path, $"field 'pre_tokenizer': unsupported pre-tokenizer {p.GetRawText()}; supported are ByteLevel, Split with a Regex pattern, and Sequence of these");
            }
        }
        if (!byteLevel)
            throw new TokenizerLoadException(path, "field 'pre_tokenizer': no ByteLevel step, so this is not a byte-level BPE (for a Metaspace/SentencePiece BPE load tokenizer.model instead)");
        if (split is not null && useRegex)
            throw new TokenizerLoadException(path, "field 'pre_tokenizer': a Split regex followed by ByteLevel with use_regex=true (two regex splits) is not supported");
        return (split ?? HuggingFaceBpeTokenizer.Gpt2Pattern, prefix);
    }

    private static Normalizer? NormalizerOf(JsonElement root, string path)
    {
        if (!root.TryGetProperty("normalizer", out JsonElement n) || n.ValueKind == JsonValueKind.Null) return null;
        var forms = new List<NormalizationForm>();
        void Add(JsonElement e)
        {
            switch (TypeOf(e))
            {
                case "NFC": forms.Add(NormalizationForm.FormC); break;
                case "NFKC": forms.Add(NormalizationForm.FormKC); break;
                case "Sequence" when e.TryGetProperty("normalizers", out JsonElement l) && l.ValueKind == JsonValueKind.Array:
                    foreach (JsonElement x in l.EnumerateArray()) Add(x);
                    break;
                default:
                    throw new TokenizerLoadException(path, $"field 'normalizer': unsupported normalizer {e.GetRawText()}; supported are null, NFC, NFKC and Sequence of these");
            }
        }
        Add(n);
        return forms.Count == 0 ? null : new UnicodeFormNormalizer(forms);
    }

    private static string? TypeOf(JsonElement e) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty("type", out JsonElement t) && t.ValueKind == JsonValueKind.String ? t.GetString() : null;

    /// <summary>Unicode normalization forms applied in order, as a Microsoft.ML.Tokenizers normalizer.</summary>
    private sealed class UnicodeFormNormalizer(List<NormalizationForm> forms) : Normalizer
    {
        public override string Normalize(string original)
        {
            foreach (NormalizationForm f in forms) original = original.Normalize(f);
            return original;
        }

        public override string Normalize(ReadOnlySpan<char> original) => Normalize(original.ToString());
    }
}
