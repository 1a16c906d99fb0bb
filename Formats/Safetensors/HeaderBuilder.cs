using System.Buffers;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace QuantPeft.Formats.Safetensors;

/// <summary>
/// Lays tensors out the way the reference writer does (dtype alignment descending, then name, packed
/// from offset 0) and renders the header: compact JSON, <c>__metadata__</c> first, padded with spaces
/// to a multiple of 8 so the data section starts 8-byte aligned.
/// </summary>
internal static class HeaderBuilder
{
    public static (SafetensorsTensorInfo[] Tensors, byte[] Header) Build(IEnumerable<SafetensorsTensorLayout> layout, IReadOnlyDictionary<string, string>? metadata)
    {
        ArgumentNullException.ThrowIfNull(layout);
        var items = new List<(SafetensorsTensorLayout Layout, long Bytes, byte[] Utf8Name)>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var t in layout)
        {
            ArgumentNullException.ThrowIfNull(t);
            ArgumentNullException.ThrowIfNull(t.Shape);
            if (string.IsNullOrEmpty(t.Name) || t.Name == "__metadata__")
                throw new ArgumentException($"'{t.Name}' cannot name a tensor", nameof(layout));
            if (!names.Add(t.Name))
                throw new ArgumentException($"tensor '{t.Name}' is declared twice", nameof(layout));
            if (!Enum.IsDefined(t.DType))
                throw new ArgumentException($"tensor '{t.Name}': {t.DType} is not a safetensors dtype", nameof(layout));
            items.Add((t, t.DType.ByteLength(t.Shape), Encoding.UTF8.GetBytes(t.Name)));
        }
        // Rust compares String by UTF-8 bytes; comparing the encoded names matches it exactly.
        items.Sort((a, b) => a.Layout.DType != b.Layout.DType
            ? b.Layout.DType.CompareTo(a.Layout.DType)
            : a.Utf8Name.AsSpan().SequenceCompareTo(b.Utf8Name));

        var offsets = new (long Begin, long End)[items.Count];
        long offset = 0;
        for (int i = 0; i < items.Count; i++)
        {
            offsets[i] = (offset, checked(offset + items[i].Bytes));
            offset = offsets[i].End;
        }
        byte[] header = Render(items.Select(x => x.Layout).ToArray(), offsets, metadata);
        long dataSectionOffset = 8 + header.Length;
        var tensors = new SafetensorsTensorInfo[items.Count];
        for (int i = 0; i < items.Count; i++)
        {
            var l = items[i].Layout;
            long count = l.Shape.Aggregate(1L, (a, d) => a * d);
            tensors[i] = new SafetensorsTensorInfo(l.Name, l.DType, (long[])l.Shape.Clone(), offsets[i].Begin, offsets[i].End, dataSectionOffset, count);
        }
        return (tensors, header);
    }

    private static byte[] Render(SafetensorsTensorLayout[] layout, (long Begin, long End)[] offsets, IReadOnlyDictionary<string, string>? metadata)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            json.WriteStartObject();
            if (metadata is not null)
            {
                json.WriteStartObject("__metadata__");
                foreach (var (key, value) in metadata)
                    json.WriteString(key, value);
                json.WriteEndObject();
            }
            for (int i = 0; i < layout.Length; i++)
            {
                json.WriteStartObject(layout[i].Name);
                json.WriteString("dtype", layout[i].DType.HeaderName());
                json.WriteStartArray("shape");
                foreach (long d in layout[i].Shape)
                    json.WriteNumberValue(d);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offsets[i].Begin);
                json.WriteNumberValue(offsets[i].End);
                json.WriteEndArray();
                json.WriteEndObject();
            }
            json.WriteEndObject();
        }
        int padded = (buffer.WrittenCount + 7) / 8 * 8;
        var header = new byte[padded];
        buffer.WrittenSpan.CopyTo(header);
        header.AsSpan(buffer.WrittenCount).Fill((byte)' ');
        return header;
    }
}
