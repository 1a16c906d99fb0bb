using System.Text.Json;

namespace QuantPeft.Trainers.Tokenizers;

/// <summary>Opens tokenizer JSON files so that every failure names the file.</summary>
internal static class TokenizerJsonFile
{
    public static JsonDocument Parse(string path)
    {
        byte[] bytes = ReadAllBytes(path);
        try
        {
            return JsonDocument.Parse(bytes, new JsonDocumentOptions { AllowTrailingCommas = false, CommentHandling = JsonCommentHandling.Skip });
        }
        catch (JsonException e)
        {
            throw new TokenizerLoadException(path, $"invalid JSON at line {e.LineNumber + 1}, byte {e.BytePositionInLine + 1}: {e.Message}", e);
        }
    }

    public static byte[] ReadAllBytes(string path)
    {
        if (!File.Exists(path))
            throw new TokenizerLoadException(path, "file does not exist");
        try
        {
            return File.ReadAllBytes(path);
        }
        catch (IOException e)
        {
            throw new TokenizerLoadException(path, $"cannot read: {e.Message}", e);
        }
        catch (UnauthorizedAccessException e)
        {
            throw new TokenizerLoadException(path, $"cannot read: {e.Message}", e);
        }
    }
}
