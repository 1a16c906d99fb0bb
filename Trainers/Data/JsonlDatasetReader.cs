using System.Text.Json;
using System.Text.Unicode;

namespace QuantPeft.Trainers.Data;

/// <summary>
/// Reads a JSONL dataset: one JSON object per line with <c>text</c>, or <c>prompt</c> + <c>completion</c>,
/// or <c>messages</c>. Every line is checked; the first <see cref="DatasetFormatException.ReportedLines"/>
/// bad lines are reported together with their line numbers, so one run shows a user most of what to fix.
/// </summary>
/// <remarks>
/// Blank lines are skipped (a trailing newline is common). Fields other than the three shapes are
/// ignored. Lines must be UTF-8; a byte-order mark at the start of the file is accepted.
/// </remarks>
public static class JsonlDatasetReader
{
    /// <summary>Reads and validates every line of <paramref name="path"/>.</summary>
    /// <exception cref="DatasetFormatException">The file is missing, has no records, or has bad lines.</exception>
    public static IReadOnlyList<DatasetRecord> Read(string path) => Read(path, DatasetFields.Default);

    /// <summary>Reads and validates every line of <paramref name="path"/>, finding each field under the name <paramref name="fields"/> maps it to.</summary>
    /// <exception cref="DatasetFormatException">The file is missing, has no records, or has bad lines.</exception>
    public static IReadOnlyList<DatasetRecord> Read(string path, DatasetFields fields)
    {
        if (!File.Exists(path))
            throw new DatasetFormatException(path, "file does not exist");
        var records = new List<DatasetRecord>();
        var errors = new List<DatasetLineError>();
        int bad = 0;
        using (var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16))
        {
            foreach ((int line, byte[] bytes) in ByteLines.Read(stream))
            {
                if (IsBlank(bytes)) continue;
                string? problem = TryParse(bytes, line, fields, out DatasetRecord? record);
                if (problem is null)
                {
                    records.Add(record!);
                    continue;
                }
                if (bad++ < DatasetFormatException.ReportedLines) errors.Add(new DatasetLineError(line, problem));
            }
        }
        if (bad > 0) throw new DatasetFormatException(path, errors, bad);
        if (records.Count == 0) throw new DatasetFormatException(path, "no records (the file is empty or has only blank lines)");
        return records;
    }

    /// <summary>Parses one line; returns null and the record on success, else the problem.</summary>
    internal static string? TryParse(ReadOnlyMemory<byte> bytes, int line, out DatasetRecord? record) => TryParse(bytes, line, DatasetFields.Default, out record);

    /// <summary>Parses one line with mapped field names.</summary>
    internal static string? TryParse(ReadOnlyMemory<byte> bytes, int line, DatasetFields f, out DatasetRecord? record)
    {
        record = null;
        if (InvalidUtf8At(bytes.Span) is int at)
            return $"not valid UTF-8 at byte {at + 1}";
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(bytes);
        }
        catch (JsonException e)
        {
            return $"invalid JSON at byte {e.BytePositionInLine + 1}: {FirstSentence(e.Message)}";
        }
        using (doc)
        {
            // An escaped lone surrogate (\ud800) is valid JSON but no string: .NET refuses to decode it, and no
            // tokenizer could encode it, so the line is bad rather than the reader's own failure.
            if (FirstUndecodableString(doc.RootElement, "") is string where)
                return $"{where} holds an escaped lone surrogate (a \\uD800-\\uDFFF escape without its pair), which is not text";
            JsonElement root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                return $"expected a JSON object, found {Describe(root)}";
            bool text = root.TryGetProperty(f.Text, out JsonElement t);
            bool prompt = root.TryGetProperty(f.Prompt, out JsonElement p);
            bool completion = root.TryGetProperty(f.Completion, out JsonElement c);
            bool messages = root.TryGetProperty(f.Messages, out JsonElement m);
            bool instruction = root.TryGetProperty(f.Instruction, out JsonElement ins);
            bool output = root.TryGetProperty(f.Output, out JsonElement outp);
            bool conversations = root.TryGetProperty(f.Conversations, out JsonElement conv);
            int shapes = (text ? 1 : 0) + (prompt || completion ? 1 : 0) + (messages ? 1 : 0) + (instruction || output ? 1 : 0) + (conversations ? 1 : 0);
            if (shapes == 0)
                return $"missing field: expected '{f.Text}', or '{f.Prompt}' and '{f.Completion}', or '{f.Messages}', or '{f.Instruction}' and '{f.Output}' (alpaca), or '{f.Conversations}' (ShareGPT)";
            if (shapes > 1) return "fields of more than one format; use exactly one of text, prompt + completion, messages, alpaca (instruction + output), ShareGPT (conversations)";
            if (text)
            {
                if (NonEmptyString(t, f.Text) is string err) return err;
                record = new DatasetRecord { Kind = RecordKind.Text, Text = t.GetString(), Line = line };
                return null;
            }
            if (prompt || completion)
            {
                if (!prompt) return $"missing field '{f.Prompt}' (a record with '{f.Completion}' needs one)";
                if (!completion) return $"missing field '{f.Completion}' (a record with '{f.Prompt}' needs one)";
                if (p.ValueKind != JsonValueKind.String) return $"field '{f.Prompt}': expected a string, found {Describe(p)}";
                if (NonEmptyString(c, f.Completion) is string err) return err;
                record = new DatasetRecord { Kind = RecordKind.PromptCompletion, Prompt = p.GetString(), Completion = c.GetString(), Line = line };
                return null;
            }
            if (instruction || output) return AlpacaRecords.Parse(root, f, line, out record);
            if (conversations) return ShareGptRecords.Parse(conv, f, line, out record);
            return ParseMessages(m, line, out record);
        }
    }

    private static string? ParseMessages(JsonElement m, int line, out DatasetRecord? record)
    {
        record = null;
        if (m.ValueKind != JsonValueKind.Array) return $"field 'messages': expected an array, found {Describe(m)}";
        if (m.GetArrayLength() == 0) return "field 'messages' is empty";
        var list = new List<ChatMessage>();
        int i = 0;
        foreach (JsonElement e in m.EnumerateArray())
        {
            string at = $"messages[{i}]";
            if (e.ValueKind != JsonValueKind.Object) return $"field '{at}': expected an object with 'role' and 'content', found {Describe(e)}";
            if (!e.TryGetProperty("role", out JsonElement role)) return $"missing field '{at}.role'";
            if (role.ValueKind != JsonValueKind.String) return $"field '{at}.role': expected a string, found {Describe(role)}";
            string r = role.GetString()!;
            if (!ChatMessage.Roles.Contains(r)) return $"field '{at}.role': expected one of {string.Join(", ", ChatMessage.Roles)}, found \"{r}\"";
            if (!e.TryGetProperty("content", out JsonElement content)) return $"missing field '{at}.content'";
            if (content.ValueKind != JsonValueKind.String) return $"field '{at}.content': expected a string, found {Describe(content)}";
            if (r == "assistant" && content.GetString()!.Length == 0) return $"field '{at}.content' is empty (an assistant turn must have text to train on)";
            list.Add(new ChatMessage(r, content.GetString()!));
            i++;
        }
        if (!list.Any(x => x.Role == "assistant")) return "field 'messages' has no assistant turn to train on";
        record = new DatasetRecord { Kind = RecordKind.Messages, Messages = list, Line = line };
        return null;
    }

    /// <summary>The path of the first string (value or property name) that cannot be decoded to UTF-16, or null.</summary>
    internal static string? FirstUndecodableString(JsonElement e, string path)
    {
        switch (e.ValueKind)
        {
            case JsonValueKind.String:
                return Decodes(e) ? null : Where(path);
            case JsonValueKind.Array:
                int i = 0;
                foreach (JsonElement item in e.EnumerateArray())
                    if (FirstUndecodableString(item, $"{path}[{i++}]") is string at) return at;
                return null;
            case JsonValueKind.Object:
                foreach (JsonProperty p in e.EnumerateObject())
                {
                    string name;
                    try { name = p.Name; }
                    catch (InvalidOperationException) { return Where(path.Length == 0 ? "a field name" : $"a field name in {path}"); }
                    string child = path.Length == 0 ? name : $"{path}.{name}";
                    if (FirstUndecodableString(p.Value, child) is string at) return at;
                }
                return null;
            default:
                return null;
        }
    }

    private static string Where(string path) => path.StartsWith("a field name", StringComparison.Ordinal) ? path : $"field '{path}'";

    private static bool Decodes(JsonElement e)
    {
        try
        {
            _ = e.GetString();
            return true;
        }
        catch (InvalidOperationException)
        {
            return false;
        }
    }

    internal static string? NonEmptyString(JsonElement e, string field) =>
        e.ValueKind != JsonValueKind.String ? $"field '{field}': expected a string, found {Describe(e)}"
        : e.GetString()!.Length == 0 ? $"field '{field}' is empty"
        : null;

    internal static string Describe(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => $"the number {e.GetRawText()}",
        JsonValueKind.True or JsonValueKind.False => $"the boolean {e.GetRawText()}",
        JsonValueKind.Null => "null",
        _ => e.ValueKind.ToString(),
    };

    private static int? InvalidUtf8At(ReadOnlySpan<byte> bytes)
    {
        if (Utf8.IsValid(bytes)) return null;
        char[] chars = new char[bytes.Length];
        Utf8.ToUtf16(bytes, chars, out int read, out _, replaceInvalidSequences: false);
        return read;
    }

    private static string FirstSentence(string message)
    {
        int cut = message.IndexOf(" Path:", StringComparison.Ordinal);
        return cut > 0 ? message[..cut] : message;
    }

    private static bool IsBlank(byte[] bytes)
    {
        foreach (byte b in bytes)
            if (b is not ((byte)' ' or (byte)'\t' or (byte)'\r')) return false;
        return true;
    }
}
