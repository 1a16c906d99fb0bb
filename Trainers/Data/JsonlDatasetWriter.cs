using System.Text.Encodings.Web;
using System.Text.Json;
using QuantPeft.Formats;

namespace QuantPeft.Trainers.Data;

/// <summary>Writes records as JSONL in the shape <see cref="JsonlDatasetReader"/> reads, atomically.</summary>
public static class JsonlDatasetWriter
{
    /// <summary>Writes one JSON object per record to <paramref name="path"/> (temp file + rename); returns the number of records.</summary>
    public static int Write(string path, IEnumerable<DatasetRecord> records)
    {
        int count = 0;
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        AtomicFile.Write(path, stream =>
        {
            using var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = false, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
            foreach (DatasetRecord r in records)
            {
                json.Reset(stream);
                WriteRecord(json, r);
                json.Flush();
                stream.WriteByte((byte)'\n');
                count++;
            }
        });
        return count;
    }

    private static void WriteRecord(Utf8JsonWriter json, DatasetRecord r)
    {
        json.WriteStartObject();
        switch (r.Kind)
        {
            case RecordKind.Text:
                json.WriteString("text", r.Text);
                break;
            case RecordKind.PromptCompletion:
                json.WriteString("prompt", r.Prompt);
                json.WriteString("completion", r.Completion);
                break;
            case RecordKind.Messages:
                json.WriteStartArray("messages");
                foreach (ChatMessage m in r.Messages!)
                {
                    json.WriteStartObject();
                    json.WriteString("role", m.Role);
                    json.WriteString("content", m.Content);
                    json.WriteEndObject();
                }
                json.WriteEndArray();
                break;
        }
        json.WriteEndObject();
    }
}
