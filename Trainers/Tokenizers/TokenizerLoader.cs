using System.Text.Json;

namespace QuantPeft.Trainers.Tokenizers;

/// <summary>Picks the tokenizer a model folder declares.</summary>
public static class TokenizerLoader
{
    /// <summary>
    /// Loads the tokenizer of a Hugging Face model folder: <c>tokenizer.json</c> when it is a byte-level
    /// BPE, otherwise <c>tokenizer.model</c> (SentencePiece). A folder with a non-byte-level
    /// <c>tokenizer.json</c> and no <c>tokenizer.model</c> is an error that names the file.
    /// </summary>
    /// <exception cref="TokenizerLoadException">No usable tokenizer file in <paramref name="folder"/>.</exception>
    public static ITextTokenizer FromModelFolder(string folder)
    {
        string json = Path.Combine(folder, HuggingFaceBpeTokenizer.FileName);
        string model = Path.Combine(folder, SentencePieceTextTokenizer.FileName);
        TokenizerConfigJson config = TokenizerConfigJson.ReadFromFolder(folder);
        if (File.Exists(json) && (!File.Exists(model) || IsByteLevelBpe(json)))
            return HuggingFaceBpeTokenizer.Load(json, config);
        if (File.Exists(model))
            return SentencePieceTextTokenizer.Load(model, config);
        throw new TokenizerLoadException(json, $"file does not exist, and neither does '{model}'");
    }

    private static bool IsByteLevelBpe(string path)
    {
        using JsonDocument doc = TokenizerJsonFile.Parse(path);
        return doc.RootElement.ValueKind == JsonValueKind.Object
            && doc.RootElement.TryGetProperty("pre_tokenizer", out JsonElement pre)
            && pre.GetRawText().Contains("\"ByteLevel\"", StringComparison.Ordinal);
    }
}
