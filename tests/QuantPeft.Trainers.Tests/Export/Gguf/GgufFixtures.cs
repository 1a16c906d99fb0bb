using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using QuantPeft.Formats.HuggingFace;
using QuantPeft.Trainers.Export.Gguf;
using QuantPeft.Trainers.Model;
using QuantPeft.Trainers.Recipes;
using QuantPeft.Trainers.Tests.Tokenizers;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Tests.Export.Gguf;

/// <summary>
/// Model folders for the GGUF tests: a byte-level BPE <c>tokenizer.json</c> whose merges are learned here from a
/// multilingual text (the textbook BPE procedure: merge the most frequent adjacent pair, repeat), a SentencePiece
/// <c>tokenizer.model</c> with byte fallback, and random-weight llama and qwen2 models around them.
/// </summary>
internal static class GgufFixtures
{
    /// <summary>The fixed text: Latin with diacritics, Cyrillic, Greek, CJK, Japanese kana, Arabic, an emoji, digits, punctuation, a newline.</summary>
    public const string Multilingual =
        "The quick brown fox jumps over the lazy dog. Grüße aus Köln, naïve café! Привет, как дела? Γειά σου κόσμε. " +
        "你好，世界。こんにちは、元気ですか？ مرحبا بالعالم 🙂 It's 2026: 12345 + 678 = 13023.\nSecond line's end.";

    public const string Llama3Split = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    /// <summary>A byte-level BPE tokenizer.json: 256 byte tokens, <paramref name="mergeCount"/> learned merges, then &lt;s&gt; and &lt;/s&gt;.</summary>
    /// <param name="split">null: GPT-2's ByteLevel regex; otherwise a Split regex before a regex-free ByteLevel step.</param>
    public static string BpeTokenizerJson(int mergeCount, string? split = null)
    {
        string pattern = split ?? @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";
        var words = Regex.Matches(Multilingual + " " + Multilingual.ToLowerInvariant(), pattern).Select(m =>
            Encoding.UTF8.GetBytes(m.Value).Select(b => GgufVocabulary.ByteToken(b)).ToList()).ToList();
        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int b = 0; b < 256; b++) vocab[GgufVocabulary.ByteToken(b)] = b;
        var merges = new List<string[]>();
        for (int m = 0; m < mergeCount; m++)
        {
            var counts = new Dictionary<(string, string), int>();
            foreach (var w in words)
                for (int i = 0; i + 1 < w.Count; i++)
                    counts[(w[i], w[i + 1])] = counts.GetValueOrDefault((w[i], w[i + 1])) + 1;
            if (counts.Count == 0) break;
            var best = counts.OrderByDescending(kv => kv.Value).ThenBy(kv => kv.Key.Item1 + " " + kv.Key.Item2, StringComparer.Ordinal).First().Key;
            merges.Add([best.Item1, best.Item2]);
            string joined = best.Item1 + best.Item2;
            if (!vocab.ContainsKey(joined)) vocab[joined] = vocab.Count;
            foreach (var w in words)
                for (int i = 0; i + 1 < w.Count; i++)
                    if (w[i] == best.Item1 && w[i + 1] == best.Item2)
                    {
                        w[i] = joined;
                        w.RemoveAt(i + 1);
                    }
        }
        int bos = vocab.Count, eos = vocab.Count + 1;
        object pre = split is null
            ? new { type = "ByteLevel", add_prefix_space = false, trim_offsets = true, use_regex = true }
            : new
            {
                type = "Sequence",
                pretokenizers = new object[]
                {
                    new { type = "Split", pattern = new { Regex = split }, behavior = "Isolated", invert = false },
                    new { type = "ByteLevel", add_prefix_space = false, trim_offsets = true, use_regex = false },
                },
            };
        var doc = new
        {
            version = "1.0",
            added_tokens = new[]
            {
                new { id = bos, content = "<s>", single_word = false, lstrip = false, rstrip = false, normalized = false, special = true },
                new { id = eos, content = "</s>", single_word = false, lstrip = false, rstrip = false, normalized = false, special = true },
            },
            normalizer = (object?)null,
            pre_tokenizer = pre,
            post_processor = (object?)null,
            decoder = new { type = "ByteLevel", add_prefix_space = true, trim_offsets = true, use_regex = true },
            model = new { type = "BPE", dropout = (object?)null, unk_token = (object?)null, fuse_unk = false, byte_fallback = false, vocab, merges },
        };
        return JsonSerializer.Serialize(doc);
    }

    /// <summary>
    /// A SentencePiece BPE model: &lt;unk&gt; &lt;s&gt; &lt;/s&gt;, the 256 byte-fallback pieces, the characters of the Latin
    /// and Cyrillic part of the text, and a few merged pieces (higher score merges first). CJK, kana, Arabic and the emoji
    /// have no piece, so they fall back to bytes.
    /// </summary>
    public static byte[] SentencePieceModel()
    {
        var pieces = new List<(string Piece, float Score, int Type)> { ("<unk>", 0, 2), ("<s>", 0, 3), ("</s>", 0, 3) };
        for (int b = 0; b < 256; b++) pieces.Add(($"<0x{b:X2}>", 0, 6));
        string covered = "▁" + new string(Multilingual.Where(c => c < 0x0500 && c != ' ' && c != '\n').Distinct().OrderBy(c => c).ToArray());
        float score = -100;
        foreach (char c in covered) pieces.Add((c.ToString(), score -= 0.01f, 1));
        string[] merged = ["▁t", "he", "▁the", "▁q", "ui", "ck", "▁qu", "ow", "▁br", "▁fo", "er", "▁ov", "▁over", "ел", "ра", "▁к", "ак", "▁как", "ве", "▁de", "ne", "23", "12"];
        score = -1;
        foreach (string m in merged) pieces.Add((m, score -= 0.5f, 1));

        var model = new MemoryStream();
        foreach (var (piece, s, type) in pieces)
        {
            var p = new MemoryStream();
            SentencePieceTests.Proto.String(p, 1, piece);
            SentencePieceTests.Proto.Float(p, 2, s);
            SentencePieceTests.Proto.Varint(p, 3, (ulong)type);
            SentencePieceTests.Proto.Bytes(model, 1, p.ToArray());
        }
        var trainer = new MemoryStream();
        SentencePieceTests.Proto.Varint(trainer, 3, 2);   // model_type = BPE
        SentencePieceTests.Proto.Varint(trainer, 4, (ulong)pieces.Count);
        SentencePieceTests.Proto.Varint(trainer, 35, 1);  // byte_fallback
        SentencePieceTests.Proto.Varint(trainer, 40, 0);
        SentencePieceTests.Proto.Varint(trainer, 41, 1);
        SentencePieceTests.Proto.Varint(trainer, 42, 2);
        SentencePieceTests.Proto.Varint(trainer, 43, ulong.MaxValue);
        SentencePieceTests.Proto.Bytes(model, 2, trainer.ToArray());
        var normalizer = new MemoryStream();
        SentencePieceTests.Proto.String(normalizer, 1, "identity");
        SentencePieceTests.Proto.Varint(normalizer, 3, 1);   // add_dummy_prefix
        SentencePieceTests.Proto.Varint(normalizer, 4, 0);   // remove_extra_whitespaces off: llama.cpp keeps runs of spaces
        SentencePieceTests.Proto.Varint(normalizer, 5, 1);   // escape_whitespaces
        SentencePieceTests.Proto.Bytes(model, 3, normalizer.ToArray());
        return model.ToArray();
    }

    /// <summary>A llama- or qwen2-shaped spec with the given widths.</summary>
    public static ModelSpec Spec(string family, int hidden, int intermediate, int heads, int kvHeads, int vocab, bool tied = false) => new()
    {
        ModelType = family, NumLayers = 2, HiddenSize = hidden, IntermediateSize = intermediate, NumHeads = heads,
        NumKvHeads = kvHeads, VocabSize = vocab, TieWordEmbeddings = tied, AttentionBias = family == "qwen2",
        RopeTheta = 10000, RmsNormEps = 1e-6, MaxPositionEmbeddings = 256,
    };

    /// <summary>
    /// A 256-wide model (rows of 256, so the k-quants apply) of each GGUF family, shaped as its published configs are:
    /// <c>llama-3.2</c> with tied embeddings and llama3 rope scaling; <c>qwen3</c> with q/k norms and an explicit head_dim;
    /// <c>gemma2</c> with soft-caps, a 16-token window on every other layer and query_pre_attn_scalar = head_dim (as its
    /// 2B and 9B); <c>gemma3</c> with q/k norms, six layers (five local, one global), a local RoPE base of 10000 and linear
    /// scaling of the global one; <c>mistral-window</c> with a 112-token window on every layer and a Nemo-style explicit
    /// head_dim. The Gemma windows are far shorter than the test text, so a file whose attention ignores them disagrees.
    /// </summary>
    public static ModelSpec FamilySpec(string family, int vocab) => family switch
    {
        "llama" or "qwen2" => Spec(family, 256, 512, 4, 2, vocab, tied: family == "qwen2"),
        "llama-3.2" => Spec("llama", 256, 512, 4, 2, vocab, tied: true) with
        {
            RopeTheta = 500000, RopeScaling = new RopeScaling("llama3", 32, 1, 4, 8192),
        },
        "qwen3" => Spec("qwen3", 256, 512, 4, 2, vocab, tied: true) with { AttentionBias = false, QkNorm = true, HeadDimOverride = 64, RopeTheta = 1000000 },
        "gemma2" => Spec("gemma2", 256, 512, 4, 2, vocab, tied: true) with
        {
            HeadDimOverride = 64, QueryPreAttnScalar = 64, SlidingWindow = 16, GlobalLayerEvery = 2, AttnLogitSoftcap = 5, FinalLogitSoftcap = 8,
        },
        "gemma3" => Spec("gemma3_text", 256, 512, 4, 2, vocab, tied: true) with
        {
            NumLayers = 6, HeadDimOverride = 64, QueryPreAttnScalar = 64, SlidingWindow = 16, GlobalLayerEvery = 6, QkNorm = true,
            RopeTheta = 1000000, RopeLocalTheta = 10000, RopeScaling = new RopeScaling("linear", 8),
        },
        "mistral-window" => Spec("mistral", 256, 512, 4, 2, vocab) with { HeadDimOverride = 128, SlidingWindow = 112, RopeTheta = 1000000 },
        _ => throw new ArgumentException(family),
    };

    /// <summary>
    /// Writes a random-weight model (bf16 safetensors, as published checkpoints are; seeded) with the given tokenizer files into <paramref name="folder"/>.
    /// The projections have std 1/√fan-in and the embedding and head std 2/√hidden (Gemma's embedding, which enters the
    /// residual stream times √hidden and is also its head, 0.5/√hidden), so the logits have a std of about 2:
    /// far from uniform (a wrong tensor layout shows in the log-probabilities) but not so peaked that every miss costs
    /// tens of nats.
    /// </summary>
    public static string WriteModel(ModelSpec spec, string folder, IReadOnlyDictionary<string, byte[]> tokenizerFiles, int seed = 3)
    {
        manual_seed(seed);
        using (var model = new CausalLm(spec, new DecoderOptions { ComputeDType = ScalarType.BFloat16 }))
        {
            using (no_grad())
                foreach (var (name, p) in model.named_parameters())
                {
                    if (p.dim() == 2) nn.init.normal_(p, 0, (name.Contains("embed") || name.Contains("lm_head") ? (spec.GemmaStyle ? 0.5 : 2.0) : 1.0) / Math.Sqrt(p.shape[1]));
                    else if (name.EndsWith("bias", StringComparison.Ordinal)) nn.init.normal_(p, 0, 0.1);
                    else if (spec.GemmaStyle) nn.init.uniform_(p, -0.2, 0.2);   // Gemma's norms scale by (1 + w)
                    else nn.init.uniform_(p, 0.8, 1.2);
                }
            ModelFolder.SaveByteLevel(model, folder);
        }
        File.Delete(Path.Combine(folder, ModelFolder.ByteTokenizerFileName));
        foreach (var (name, bytes) in tokenizerFiles) File.WriteAllBytes(Path.Combine(folder, name), bytes);
        return folder;
    }

    public static IReadOnlyDictionary<string, byte[]> BpeFiles(string json, string? chatTemplate = null) => new Dictionary<string, byte[]>
    {
        ["tokenizer.json"] = Encoding.UTF8.GetBytes(json),
        ["tokenizer_config.json"] = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(new { bos_token = "<s>", eos_token = "</s>", chat_template = chatTemplate })),
    };

    public static IReadOnlyDictionary<string, byte[]> SentencePieceFiles() => new Dictionary<string, byte[]>
    {
        ["tokenizer.model"] = SentencePieceModel(),
    };

    public static int VocabSizeOf(string tokenizerJson)
    {
        using var doc = JsonDocument.Parse(tokenizerJson);
        return doc.RootElement.GetProperty("model").GetProperty("vocab").EnumerateObject().Count() + 2;
    }
}
