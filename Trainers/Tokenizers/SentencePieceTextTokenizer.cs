using Microsoft.ML.Tokenizers;

namespace QuantPeft.Trainers.Tokenizers;

/// <summary>
/// A SentencePiece <c>tokenizer.model</c> (Llama 2, Mistral 7B, Gemma) run by
/// <see cref="SentencePieceTokenizer"/> of Microsoft.ML.Tokenizers.
/// </summary>
public sealed class SentencePieceTextTokenizer : ITextTokenizer
{
    /// <summary>The file name Hugging Face uses.</summary>
    public const string FileName = "tokenizer.model";

    private readonly SentencePieceTokenizer _sp;
    private readonly HashSet<int> _skipOnDecode;

    private SentencePieceTextTokenizer(SentencePieceTokenizer sp, int vocabSize, int? pad)
    {
        _sp = sp;
        VocabSize = vocabSize;
        PadId = pad;
        _skipOnDecode = [sp.BeginningOfSentenceId, sp.EndOfSentenceId];
        if (pad is int p) _skipOnDecode.Add(p);
    }

    /// <inheritdoc/>
    public int VocabSize { get; }

    /// <inheritdoc/>
    public int? BosId => _sp.BeginningOfSentenceId >= 0 ? _sp.BeginningOfSentenceId : null;

    /// <inheritdoc/>
    public int? EosId => _sp.EndOfSentenceId >= 0 ? _sp.EndOfSentenceId : null;

    /// <inheritdoc/>
    public int? PadId { get; }

    /// <summary>
    /// Loads <paramref name="path"/>. PAD comes from the <c>pad_token</c> of <paramref name="config"/>
    /// (the <c>tokenizer_config.json</c> beside the file when null) if that token is in the vocabulary.
    /// </summary>
    /// <exception cref="TokenizerLoadException">The file is missing or is not a SentencePiece model.</exception>
    public static SentencePieceTextTokenizer Load(string path, TokenizerConfigJson? config = null)
    {
        config ??= TokenizerConfigJson.ReadFromFolder(Path.GetDirectoryName(Path.GetFullPath(path))!);
        byte[] bytes = TokenizerJsonFile.ReadAllBytes(path);
        SentencePieceTokenizer sp;
        try
        {
            using var stream = new MemoryStream(bytes, writable: false);
            sp = SentencePieceTokenizer.Create(stream, addBeginningOfSentence: false, addEndOfSentence: false);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // The protobuf parser and the model builder throw a variety of types for a corrupt file.
            throw new TokenizerLoadException(path, $"not a valid SentencePiece model: {e.Message}", e);
        }
        int vocabSize = sp.Vocabulary.Values.DefaultIfEmpty(-1).Max() + 1;
        if (sp.SpecialTokens is { Count: > 0 } specials)
            vocabSize = Math.Max(vocabSize, specials.Values.Max() + 1);
        int? pad = null;
        if (config.PadToken is string padToken)
        {
            if (!sp.Vocabulary.TryGetValue(padToken, out int id))
                throw new TokenizerLoadException(path, $"pad_token '{padToken}' named by {TokenizerConfigJson.FileName} is not in the SentencePiece vocabulary");
            pad = id;
        }
        return new SentencePieceTextTokenizer(sp, vocabSize, pad);
    }

    /// <inheritdoc/>
    public int[] Encode(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        return [.. _sp.EncodeToIds(text, addBeginningOfSentence: false, addEndOfSentence: false)];
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
        return _sp.Decode(kept);
    }
}
