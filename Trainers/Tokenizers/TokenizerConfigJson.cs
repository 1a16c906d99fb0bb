using System.Text.Json;

namespace QuantPeft.Trainers.Tokenizers;

/// <summary>
/// The few fields of a Hugging Face <c>tokenizer_config.json</c> that training needs: the names of
/// the BOS/EOS/PAD tokens and the chat template. Everything else in the file is ignored on purpose.
/// </summary>
/// <param name="BosToken">Content of <c>bos_token</c>, or null.</param>
/// <param name="EosToken">Content of <c>eos_token</c>, or null.</param>
/// <param name="PadToken">Content of <c>pad_token</c>, or null.</param>
/// <param name="ChatTemplate">The Jinja source of <c>chat_template</c>, or null.</param>
public sealed record TokenizerConfigJson(string? BosToken, string? EosToken, string? PadToken, string? ChatTemplate)
{
    /// <summary>The file name Hugging Face uses.</summary>
    public const string FileName = "tokenizer_config.json";

    /// <summary>An empty configuration (no file).</summary>
    public static TokenizerConfigJson Empty { get; } = new(null, null, null, null);

    /// <summary>Reads <c>tokenizer_config.json</c> from <paramref name="folder"/>, or returns <see cref="Empty"/> when the folder has none.</summary>
    /// <exception cref="TokenizerLoadException">The file exists but is not a JSON object with string (or <c>{"content": ...}</c>) token fields.</exception>
    public static TokenizerConfigJson ReadFromFolder(string folder)
    {
        string path = Path.Combine(folder, FileName);
        return File.Exists(path) ? Read(path) : Empty;
    }

    /// <summary>Reads the file at <paramref name="path"/>.</summary>
    /// <exception cref="TokenizerLoadException">Missing file, invalid JSON, or a field of the wrong type.</exception>
    public static TokenizerConfigJson Read(string path)
    {
        using JsonDocument doc = TokenizerJsonFile.Parse(path);
        if (doc.RootElement.ValueKind != JsonValueKind.Object)
            throw new TokenizerLoadException(path, $"expected a JSON object at the top level, found {doc.RootElement.ValueKind}");
        JsonElement root = doc.RootElement;
        string? template = null;
        if (root.TryGetProperty("chat_template", out JsonElement t))
        {
            // Some models ship several named templates as [{name, template}]; the one called "default" is used for chat.
            template = t.ValueKind switch
            {
                JsonValueKind.String => t.GetString(),
                JsonValueKind.Array => t.EnumerateArray()
                    .Where(e => e.ValueKind == JsonValueKind.Object && e.TryGetProperty("name", out var n) && n.GetString() == "default")
                    .Select(e => e.TryGetProperty("template", out var s) ? s.GetString() : null).FirstOrDefault(),
                JsonValueKind.Null => null,
                _ => throw new TokenizerLoadException(path, $"field 'chat_template': expected a string, found {t.ValueKind}"),
            };
        }
        return new TokenizerConfigJson(TokenField(root, "bos_token", path), TokenField(root, "eos_token", path),
            TokenField(root, "pad_token", path), template);
    }

    private static string? TokenField(JsonElement root, string name, string path)
    {
        if (!root.TryGetProperty(name, out JsonElement v)) return null;
        return v.ValueKind switch
        {
            JsonValueKind.String => v.GetString(),
            JsonValueKind.Null => null,
            JsonValueKind.Object when v.TryGetProperty("content", out JsonElement c) && c.ValueKind == JsonValueKind.String => c.GetString(),
            _ => throw new TokenizerLoadException(path, $"field '{name}': expected a string or an object with a string 'content', found {v.ValueKind}"),
        };
    }
}
