using System.Text.Json;

namespace QuantPeft.Trainers.Data;

/// <summary>
/// ShareGPT records (<c>conversations</c>: a list of <c>{"from": "system"|"human"|"gpt", "value": ...}</c>) become
/// conversations with the roles system, user and assistant (<c>user</c> and <c>assistant</c> are accepted as speakers too).
/// </summary>
internal static class ShareGptRecords
{
    private static readonly Dictionary<string, string> Roles = new(StringComparer.Ordinal)
    {
        ["system"] = "system", ["human"] = "user", ["user"] = "user", ["gpt"] = "assistant", ["assistant"] = "assistant",
    };

    public static string? Parse(JsonElement conv, DatasetFields f, int line, out DatasetRecord? record)
    {
        record = null;
        if (conv.ValueKind != JsonValueKind.Array) return $"field '{f.Conversations}': expected an array, found {JsonlDatasetReader.Describe(conv)}";
        if (conv.GetArrayLength() == 0) return $"field '{f.Conversations}' is empty";
        var messages = new List<ChatMessage>();
        int i = 0;
        foreach (JsonElement turn in conv.EnumerateArray())
        {
            string at = $"{f.Conversations}[{i++}]";
            if (turn.ValueKind != JsonValueKind.Object) return $"field '{at}': expected an object with '{f.From}' and '{f.Value}', found {JsonlDatasetReader.Describe(turn)}";
            if (!turn.TryGetProperty(f.From, out JsonElement from)) return $"missing field '{at}.{f.From}'";
            if (from.ValueKind != JsonValueKind.String) return $"field '{at}.{f.From}': expected a string, found {JsonlDatasetReader.Describe(from)}";
            if (!Roles.TryGetValue(from.GetString()!, out string? role))
                return $"field '{at}.{f.From}': expected human, gpt or system, found \"{from.GetString()}\"";
            if (!turn.TryGetProperty(f.Value, out JsonElement value)) return $"missing field '{at}.{f.Value}'";
            if (value.ValueKind != JsonValueKind.String) return $"field '{at}.{f.Value}': expected a string, found {JsonlDatasetReader.Describe(value)}";
            if (role == "assistant" && value.GetString()!.Length == 0) return $"field '{at}.{f.Value}' is empty (an assistant turn must have text to train on)";
            messages.Add(new ChatMessage(role, value.GetString()!));
        }
        if (!messages.Any(m => m.Role == "assistant")) return $"field '{f.Conversations}' has no gpt turn to train on";
        record = new DatasetRecord { Kind = RecordKind.Messages, Messages = messages, Line = line };
        return null;
    }
}
