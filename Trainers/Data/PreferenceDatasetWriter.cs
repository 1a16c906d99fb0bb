using System.Text.Encodings.Web;
using System.Text.Json;
using QuantPeft.Formats;

namespace QuantPeft.Trainers.Data;

/// <summary>Writes preference pairs as JSONL in the shape <see cref="PreferenceDatasetReader"/> reads, atomically.</summary>
public static class PreferenceDatasetWriter
{
    /// <summary>Writes one JSON object per pair to <paramref name="path"/> (temp file + rename); returns the number of pairs.</summary>
    public static int Write(string path, IEnumerable<PreferenceRecord> records)
    {
        int count = 0;
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        AtomicFile.Write(path, stream =>
        {
            using var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
            foreach (PreferenceRecord r in records)
            {
                json.Reset(stream);
                json.WriteStartObject();
                if (r.Messages is null) json.WriteString("prompt", r.Prompt);
                else
                {
                    json.WriteStartArray("messages");
                    foreach (ChatMessage m in r.Messages)
                    {
                        json.WriteStartObject();
                        json.WriteString("role", m.Role);
                        json.WriteString("content", m.Content);
                        json.WriteEndObject();
                    }
                    json.WriteEndArray();
                }
                json.WriteString("chosen", r.Chosen);
                json.WriteString("rejected", r.Rejected);
                json.WriteEndObject();
                json.Flush();
                stream.WriteByte((byte)'\n');
                count++;
            }
        });
        return count;
    }
}
