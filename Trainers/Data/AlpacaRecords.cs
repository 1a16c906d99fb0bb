using System.Text.Json;

namespace QuantPeft.Trainers.Data;

/// <summary>
/// Alpaca records (<c>instruction</c>, optional <c>input</c>, <c>output</c>, optional <c>system</c>) become conversations:
/// an optional system turn, a user turn of the instruction (and the input after a blank line), and an assistant turn of
/// the output. As conversations they go through the model's own chat template, so the model learns the format it is
/// prompted with.
/// </summary>
internal static class AlpacaRecords
{
    public static string? Parse(JsonElement root, DatasetFields f, int line, out DatasetRecord? record)
    {
        record = null;
        if (!root.TryGetProperty(f.Instruction, out JsonElement ins)) return $"missing field '{f.Instruction}' (an alpaca record with '{f.Output}' needs one)";
        if (!root.TryGetProperty(f.Output, out JsonElement output)) return $"missing field '{f.Output}' (an alpaca record needs the answer to train on)";
        if (JsonlDatasetReader.NonEmptyString(ins, f.Instruction) is string e1) return e1;
        if (JsonlDatasetReader.NonEmptyString(output, f.Output) is string e2) return e2;
        string? input = null, system = null;
        if (root.TryGetProperty(f.Input, out JsonElement inp) && inp.ValueKind != JsonValueKind.Null)
        {
            if (inp.ValueKind != JsonValueKind.String) return $"field '{f.Input}': expected a string, found {JsonlDatasetReader.Describe(inp)}";
            input = inp.GetString();
        }
        if (root.TryGetProperty(f.System, out JsonElement sys) && sys.ValueKind != JsonValueKind.Null)
        {
            if (sys.ValueKind != JsonValueKind.String) return $"field '{f.System}': expected a string, found {JsonlDatasetReader.Describe(sys)}";
            system = sys.GetString();
        }
        var messages = new List<ChatMessage>();
        if (!string.IsNullOrEmpty(system)) messages.Add(new ChatMessage("system", system));
        string user = string.IsNullOrEmpty(input) ? ins.GetString()! : ins.GetString() + "\n\n" + input;
        messages.Add(new ChatMessage("user", user));
        messages.Add(new ChatMessage("assistant", output.GetString()!));
        record = new DatasetRecord { Kind = RecordKind.Messages, Messages = messages, Line = line };
        return null;
    }
}
