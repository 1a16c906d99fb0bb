using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.ML.Tokenizers;

namespace QuantPeft.Trainers.Tokenizers;

/// <summary>
/// A Hugging Face <c>tokenizer.json</c> byte-level BPE tokenizer (GPT-2, Llama 3, Qwen2, Mistral-Nemo
/// style), run by <see cref="BpeTokenizer"/> of Microsoft.ML.Tokenizers with the vocabulary, merges,
/// pre-tokenizer regex and <c>added_tokens</c> of the file.
/// </summary>
/// <remarks>
/// Microsoft.ML.Tokenizers 2.0.1 has no reader for <c>tokenizer.json</c>, so this class reads the file
/// and fills <see cref="BpeOptions"/>. Supported: <c>model.type = "BPE"</c>; pre-tokenizers
/// <c>ByteLevel</c>, <c>Split</c> with a regex, or a <c>Sequence</c> of these; normalizers null,
/// <c>NFC</c>, <c>NFKC</c> or a <c>Sequence</c> of these. Metaspace BPE files (Llama 2, Mistral 7B) are
/// SentencePiece models in disguise: load their <c>tokenizer.model</c> with <see cref="SentencePieceTextTokenizer"/>.
/// </remarks>
public sealed class HuggingFaceBpeTokenizer : ITextTokenizer
{
    /// <summary>The file name Hugging Face uses.</summary>
    public const string FileName = "tokenizer.json";

    // The split GPT-2 applies before byte-level BPE when the file gives no regex of its own.
    internal const string Gpt2Pattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

    private readonly BpeTokenizer _bpe;
    private readonly bool _addPrefixSpace;
    private readonly HashSet<int> _skipOnDecode;

    private HuggingFaceBpeTokenizer(BpeTokenizer bpe, bool addPrefixSpace, int vocabSize, int? bos, int? eos, int? pad, HashSet<int> skip)
    {
        _bpe = bpe;
        _addPrefixSpace = addPrefixSpace;
        VocabSize = vocabSize;
        BosId = bos;
        EosId = eos;
        PadId = pad;
        _skipOnDecode = skip;
    }

    /// <inheritdoc/>
    public int VocabSize { get; }

    /// <inheritdoc/>
    public int? BosId { get; }

    /// <inheritdoc/>
    public int? EosId { get; }

    /// <inheritdoc/>
    public int? PadId { get; }

    /// <summary>The <c>added_tokens</c> of the file (content → id), special or not.</summary>
    public IReadOnlyDictionary<string, int> AddedTokens => _bpe.SpecialTokens ?? new Dictionary<string, int>();

    /// <summary>
    /// Loads <paramref name="path"/>. BOS/EOS/PAD come from <paramref name="config"/> (the
    /// <c>tokenizer_config.json</c> beside the file when null); without names there, well-known
    /// added tokens are used (<c>&lt;s&gt;</c>, <c>&lt;|begin_of_text|&gt;</c>, <c>&lt;|endoftext|&gt;</c>, ...).
    /// </summary>
    /// <exception cref="TokenizerLoadException">The file is missing, not JSON, or not a supported byte-level BPE.</exception>
    public static HuggingFaceBpeTokenizer Load(string path, TokenizerConfigJson? config = null)
    {
        config ??= TokenizerConfigJson.ReadFromFolder(Path.GetDirectoryName(Path.GetFullPath(path))!);
        using JsonDocument doc = TokenizerJsonFile.Parse(path);
        var file = TokenizerJsonModel.Parse(doc.RootElement, path);

        var options = new BpeOptions(file.Vocab)
        {
            Merges = file.Merges,
            SpecialTokens = file.AddedTokens.Count > 0 ? new Dictionary<string, int>(file.AddedTokens) : null,
            ByteLevel = true,
            PreTokenizer = new RegexPreTokenizer(new Regex(file.SplitPattern, RegexOptions.Compiled), file.AddedTokens.Count > 0 ? file.AddedTokens : null),
            Normalizer = file.Normalizer,
            UnknownToken = file.UnknownToken,
        };
        BpeTokenizer bpe;
        try
        {
            bpe = BpeTokenizer.Create(options);
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or FormatException)
        {
            throw new TokenizerLoadException(path, $"the BPE vocabulary and merges are inconsistent: {e.Message}", e);
        }

        int vocabSize = Math.Max(file.Vocab.Count == 0 ? 0 : file.Vocab.Values.Max(), file.AddedTokens.Count == 0 ? 0 : file.AddedTokens.Values.Max()) + 1;
        int? Lookup(string? content, params string[] fallbacks)
        {
            if (content is not null)
                return file.TryGetId(content, out int id) ? id
                    : throw new TokenizerLoadException(path, $"special token '{content}' named by {TokenizerConfigJson.FileName} is neither in model.vocab nor in added_tokens");
            foreach (string f in fallbacks)
                if (file.TryGetId(f, out int id)) return id;
            return null;
        }
        int? bos = Lookup(config.BosToken, "<s>", "<|begin_of_text|>", "<|startoftext|>");
        int? eos = Lookup(config.EosToken, "</s>", "<|end_of_text|>", "<|endoftext|>", "<|im_end|>");
        int? pad = Lookup(config.PadToken, "<pad>", "<|pad|>", "<|finetune_right_pad_id|>");

        var skip = new HashSet<int>(file.SpecialIds);
        foreach (int? id in new[] { bos, eos, pad })
            if (id is int v) skip.Add(v);
        return new HuggingFaceBpeTokenizer(bpe, file.AddPrefixSpace, vocabSize, bos, eos, pad, skip);
    }

    /// <inheritdoc/>
    public int[] Encode(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (_addPrefixSpace && !text.StartsWith(' ')) text = " " + text;
        return [.. _bpe.EncodeToIds(text)];
    }

    /// <inheritdoc/>
    public string Decode(ReadOnlySpan<int> ids)
    {
        var kept = new List<int>(ids.Length);
        foreach (int id in ids)
        {
            if ((uint)id >= VocabSize)
                throw new ArgumentOutOfRangeException(nameof(ids), id, $"token ids lie in [0, {VocabSize}); found {id}");
            if (!_skipOnDecode.Contains(id)) kept.Add(id);
        }
        return _bpe.Decode(kept, considerSpecialTokens: true);
    }
}
