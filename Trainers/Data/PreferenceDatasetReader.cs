using System.Text.Json;

namespace QuantPeft.Trainers.Data;

/// <summary>
/// Reads a preference JSONL file: one object per line, either <c>{"prompt", "chosen", "rejected"}</c> or
/// <c>{"messages", "chosen", "rejected"}</c>. In the conversation form <c>chosen</c> and <c>rejected</c> are the
/// assistant's next turn: a string, an object <c>{"role": "assistant", "content"}</c>, or an array holding exactly
/// one such object (the layout TRL's conversational preference sets use). Every line is checked and the first
/// <see cref="DatasetFormatException.ReportedLines"/> bad ones are reported together, file and line named.
/// </summary>
public static class PreferenceDatasetReader
{
    /// <summary>Reads and validates every line of <paramref name="path"/>.</summary>
    /// <exception cref="DatasetFormatException">The file is missing, empty, or has bad lines.</exception>
    public static IReadOnlyList<PreferenceRecord> Read(string path)
    {
        if (!File.Exists(path)) throw new DatasetFormatException(path, "file does not exist");
        var records = new List<PreferenceRecord>();
        var errors = new List<DatasetLineError>();
        int bad = 0;
        using (var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16))
        {
            foreach ((int line, byte[] bytes) in ByteLines.Read(stream))
            {
                if (bytes.All(b => b is (byte)' ' or (byte)'\t' or (byte)'\r')) continue;
                string? problem = TryParse(bytes, line, out PreferenceRecord? record);
                if (problem is null) records.Add(record!);
                else if (bad++ < DatasetFormatException.ReportedLines) errors.Add(new DatasetLineError(line, problem));
            }
        }
        if (bad > 0) throw new DatasetFormatException(path, errors, bad);
        if (records.Count == 0) throw new DatasetFormatException(path, "no records (the file is empty or has only blank lines)");
        return records;
    }

    /// <summary>Parses one line; returns null and the record on success, else the problem.</summary>
    internal static string? TryParse(byte[] bytes, int line, out PreferenceRecord? record)
    {
        record = null;
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(bytes);
        }
        catch (JsonException e)
        {
            return $"invalid JSON at byte {e.BytePositionInLine + 1}";
        }
        catch (ArgumentException)
        {
            return "not valid UTF-8";
        }
        using (doc)
        {
            JsonElement root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object) return "expected a JSON object with 'prompt' (or 'messages'), 'chosen' and 'rejected'";
            bool hasPrompt = root.TryGetProperty("prompt", out JsonElement p);
            bool hasMessages = root.TryGetProperty("messages", out JsonElement m);
            if (hasPrompt == hasMessages)
                return hasPrompt ? "fields 'prompt' and 'messages' both present; use one" : "missing field 'prompt' (or 'messages')";
            if (Answer(root, "chosen", out string? chosen) is string c) return c;
            if (Answer(root, "rejected", out string? rejected) is string r) return r;
            if (string.Equals(chosen, rejected, StringComparison.Ordinal))
                return "'chosen' and 'rejected' are the same text (a preference pair must differ)";
            if (hasPrompt)
            {
                if (p.ValueKind != JsonValueKind.String) return $"field 'prompt': expected a string, found {p.ValueKind.ToString().ToLowerInvariant()}";
                if (p.GetString()!.Length == 0) return "field 'prompt' is empty";
                record = new PreferenceRecord { Prompt = p.GetString(), Chosen = chosen!, Rejected = rejected!, Line = line };
                return null;
            }
            if (Messages(m, out var messages) is string err) return err;
            record = new PreferenceRecord { Messages = messages, Chosen = chosen!, Rejected = rejected!, Line = line };
            return null;
        }
    }

    private static string? Answer(JsonElement root, string field, out string? text)
    {
        text = null;
        if (!root.TryGetProperty(field, out JsonElement e)) return $"missing field '{field}'";
        if (e.ValueKind == JsonValueKind.Array)
        {
            if (e.GetArrayLength() != 1) return $"field '{field}': expected one assistant turn, found an array of {e.GetArrayLength()}";
            e = e[0];
        }
        if (e.ValueKind == JsonValueKind.Object)
        {
            if (!e.TryGetProperty("role", out JsonElement role) || role.ValueKind != JsonValueKind.String || role.GetString() != "assistant")
                return $"field '{field}': expected a turn with \"role\": \"assistant\"";
            if (!e.TryGetProperty("content", out e)) return $"missing field '{field}.content'";
        }
        if (e.ValueKind != JsonValueKind.String) return $"field '{field}': expected a string or an assistant turn, found {e.ValueKind.ToString().ToLowerInvariant()}";
        text = e.GetString()!;
        return text.Length == 0 ? $"field '{field}' is empty" : null;
    }

    private static string? Messages(JsonElement m, out IReadOnlyList<ChatMessage> messages)
    {
        var list = new List<ChatMessage>();
        messages = list;
        if (m.ValueKind != JsonValueKind.Array) return "field 'messages': expected an array of turns";
        if (m.GetArrayLength() == 0) return "field 'messages' is empty";
        int i = 0;
        foreach (JsonElement e in m.EnumerateArray())
        {
            string at = $"messages[{i++}]";
            if (e.ValueKind != JsonValueKind.Object
                || !e.TryGetProperty("role", out JsonElement role) || role.ValueKind != JsonValueKind.String
                || !e.TryGetProperty("content", out JsonElement content) || content.ValueKind != JsonValueKind.String)
                return $"field '{at}': expected an object with string 'role' and 'content'";
            if (!ChatMessage.Roles.Contains(role.GetString()!))
                return $"field '{at}.role': expected one of {string.Join(", ", ChatMessage.Roles)}, found \"{role.GetString()}\"";
            list.Add(new ChatMessage(role.GetString()!, content.GetString()!));
        }
        return null;
    }
}
