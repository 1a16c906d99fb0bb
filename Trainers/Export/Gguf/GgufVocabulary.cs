using System.Text.Json;
using QuantPeft.Formats.Gguf;
using QuantPeft.Formats.HuggingFace;
using QuantPeft.Trainers.Recipes;
using QuantPeft.Trainers.Tokenizers;

namespace QuantPeft.Trainers.Export.Gguf;

/// <summary>
/// The <c>tokenizer.ggml.*</c> keys of a GGUF file, from the model folder's tokenizer: a byte-level BPE
/// <c>tokenizer.json</c> becomes llama.cpp's <c>gpt2</c> model (tokens, types, merges, and the pre-tokenizer named by
/// its split regex), a SentencePiece <c>tokenizer.model</c> becomes its <c>llama</c> model (tokens, scores, types), and
/// the demo's byte-level tokenizer becomes a <c>gpt2</c> vocabulary of the 256 byte tokens (id = byte value) and no
/// merges, which tokenizes to exactly one token per UTF-8 byte. Token ids equal QuantPeft's.
/// </summary>
/// <remarks>
/// <c>add_bos_token</c> is true whenever the tokenizer has a BOS, because QuantPeft puts BOS before every training
/// example and prompt; a model whose embedding has more rows than the tokenizer has tokens gets <c>[PADi]</c> tokens
/// of type unused, as llama.cpp needs one token per row.
/// </remarks>
public static class GgufVocabulary
{
    private const int Normal = 1, Control = 3, UserDefined = 4, Unused = 5;

    // The split regexes of the byte-level BPE families llama.cpp names (its tokenizer.ggml.pre values).
    private static readonly (string Pattern, string Pre)[] KnownSplits =
    [
        (HuggingFaceBpeTokenizer.Gpt2Pattern, "gpt-2"),
        (@"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+", "llama-bpe"),
        (@"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+", "qwen2"),
    ];

    /// <summary>Adds the tokenizer keys for the model folder <paramref name="folder"/> (and its chat template, if any).</summary>
    /// <exception cref="ExportException">A tokenizer llama.cpp cannot reproduce (an unknown split regex); the message names the file.</exception>
    public static void Add(GgufMetadata meta, string folder, ModelSpec spec)
    {
        var tokenizer = ModelFolder.ReadTokenizer(folder);
        string spm = Path.Combine(folder, SentencePieceTextTokenizer.FileName);
        switch (tokenizer)
        {
            case ByteLevelTokenizer:
                AddByteLevel(meta, spec);
                break;
            case SentencePieceTextTokenizer:
                AddSentencePiece(meta, SentencePieceModelFile.Read(spm), spec);
                break;
            case HuggingFaceBpeTokenizer:
                AddBpe(meta, Path.Combine(folder, HuggingFaceBpeTokenizer.FileName), spec);
                break;
            default:
                throw new ExportException($"'{folder}': its tokenizer ({tokenizer.GetType().Name}) has no GGUF form");
        }
        if (tokenizer.BosId is int bos) meta.SetUInt32("tokenizer.ggml.bos_token_id", (uint)bos);
        if (tokenizer.EosId is int eos) meta.SetUInt32("tokenizer.ggml.eos_token_id", (uint)eos);
        if (tokenizer.PadId is int pad) meta.SetUInt32("tokenizer.ggml.padding_token_id", (uint)pad);
        meta.SetBool("tokenizer.ggml.add_bos_token", tokenizer.BosId is not null);
        meta.SetBool("tokenizer.ggml.add_eos_token", false);
        if (!SyntheticModel.IsSynthetic(folder) && TokenizerConfigJson.ReadFromFolder(folder).ChatTemplate is string template)
            meta.Set("tokenizer.chat_template", template);
    }

    /// <summary>GPT-2's map from a byte to the printable character that stands for it in byte-level BPE vocabularies.</summary>
    public static string ByteToken(int b) => ((char)ByteChars.Value[b]).ToString();

    private static readonly Lazy<int[]> ByteChars = new(() =>
    {
        var map = new int[256];
        int next = 256;
        for (int b = 0; b < 256; b++)
            map[b] = b is (>= '!' and <= '~') or (>= '¡' and <= '¬') or (>= '®' and <= 'ÿ') ? b : next++;
        return map;
    });

    private static void AddByteLevel(GgufMetadata meta, ModelSpec spec)
    {
        var tokens = Enumerable.Range(0, 256).Select(ByteToken).Concat(["<s>", "</s>", "<pad>"]).ToList();
        var types = Enumerable.Repeat(Normal, 256).Concat([Control, Control, Control]).ToList();
        Pad(tokens, types, spec);
        meta.Set("tokenizer.ggml.model", "gpt2");
        meta.Set("tokenizer.ggml.pre", "gpt-2");
        meta.SetStrings("tokenizer.ggml.tokens", tokens);
        meta.SetInt32s("tokenizer.ggml.token_type", types);
        meta.SetStrings("tokenizer.ggml.merges", []);
    }

    private static void AddSentencePiece(GgufMetadata meta, SentencePieceModelFile sp, ModelSpec spec)
    {
        var tokens = sp.Pieces.Select(p => p.Piece).ToList();
        var scores = sp.Pieces.Select(p => p.Score).ToList();
        var types = sp.Pieces.Select(p => p.Type).ToList();
        while (tokens.Count < spec.VocabSize) scores.Add(-1000f);
        Pad(tokens, types, spec);
        meta.Set("tokenizer.ggml.model", "llama");
        meta.Set("tokenizer.ggml.pre", "default");
        meta.SetStrings("tokenizer.ggml.tokens", tokens);
        meta.SetFloat32s("tokenizer.ggml.scores", scores);
        meta.SetInt32s("tokenizer.ggml.token_type", types);
        meta.SetUInt32("tokenizer.ggml.unknown_token_id", (uint)sp.UnknownId);
    }

    private static void AddBpe(GgufMetadata meta, string path, ModelSpec spec)
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
        var file = TokenizerJsonModel.Parse(doc.RootElement, path);
        string pre = KnownSplits.FirstOrDefault(k => k.Pattern == file.SplitPattern).Pre
            ?? throw new ExportException($"{path}: pre_tokenizer split regex has no llama.cpp pre-tokenizer (known: gpt-2, llama-bpe, qwen2): {file.SplitPattern}");
        int count = Math.Max(file.Vocab.Values.DefaultIfEmpty(-1).Max(), file.AddedTokens.Values.DefaultIfEmpty(-1).Max()) + 1;
        var tokens = new string?[count];
        var types = new int[count];
        foreach (var (text, id) in file.Vocab) (tokens[id], types[id]) = (text, Normal);
        var special = file.SpecialIds.ToHashSet();
        foreach (var (text, id) in file.AddedTokens) (tokens[id], types[id]) = (text, special.Contains(id) ? Control : UserDefined);
        var tokenList = new List<string>(count);
        var typeList = new List<int>(count);
        for (int i = 0; i < count; i++)
        {
            tokenList.Add(tokens[i] ?? $"[PAD{i}]");
            typeList.Add(tokens[i] is null ? Unused : types[i]);
        }
        Pad(tokenList, typeList, spec);
        meta.Set("tokenizer.ggml.model", "gpt2");
        meta.Set("tokenizer.ggml.pre", pre);
        meta.SetStrings("tokenizer.ggml.tokens", tokenList);
        meta.SetInt32s("tokenizer.ggml.token_type", typeList);
        meta.SetStrings("tokenizer.ggml.merges", file.Merges);
        if (file.UnknownToken is string unk && file.TryGetId(unk, out int unkId)) meta.SetUInt32("tokenizer.ggml.unknown_token_id", (uint)unkId);
    }

    // llama.cpp wants exactly one token per embedding row.
    private static void Pad(List<string> tokens, List<int> types, ModelSpec spec)
    {
        if (tokens.Count > spec.VocabSize)
            throw new ExportException($"config.json: vocab_size {spec.VocabSize} is smaller than the tokenizer's {tokens.Count} tokens");
        while (tokens.Count < spec.VocabSize)
        {
            types.Add(Unused);
            tokens.Add($"[PAD{tokens.Count}]");
        }
    }
}
