using System.Text;

namespace QuantPeft.Formats.Gguf;

/// <summary>
/// Writes GGUF version 3 files (llama.cpp's model format): the header (magic <c>GGUF</c>, version, tensor and key
/// counts), the key-value metadata, the tensor infos (name, dimensions, type, offset into the data section), then the
/// tensor data, each tensor starting at a multiple of <c>general.alignment</c> (32 unless the metadata says otherwise).
/// </summary>
public static class GgufWriter
{
    /// <summary>The format version written.</summary>
    public const uint Version = 3;

    /// <summary>The alignment of the data section and of every tensor in it, unless <c>general.alignment</c> sets another.</summary>
    public const int DefaultAlignment = 32;

    /// <summary>Writes <paramref name="metadata"/> and <paramref name="tensors"/> to <paramref name="path"/>, streaming each tensor's bytes.</summary>
    /// <exception cref="ArgumentException">Two tensors share a name, or a row is not a whole number of blocks.</exception>
    /// <exception cref="InvalidOperationException">A tensor's callback wrote another number of bytes than its type and shape give.</exception>
    public static void Write(string path, GgufMetadata metadata, IReadOnlyList<GgufTensor> tensors)
    {
        int alignment = metadata["general.alignment"] is uint a ? (int)a : DefaultAlignment;
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var t in tensors)
        {
            if (!names.Add(t.Name)) throw new ArgumentException($"tensor '{t.Name}' appears twice", nameof(tensors));
            if (t.Dimensions[0] % GgmlTypes.BlockElements(t.Type) != 0)
                throw new ArgumentException(
                    $"tensor '{t.Name}': row length {t.Dimensions[0]} is not a multiple of the {t.Type} block size {GgmlTypes.BlockElements(t.Type)}", nameof(tensors));
        }

        using var file = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20);
        using (var writer = new BinaryWriter(file, Encoding.UTF8, leaveOpen: true))
        {
            writer.Write("GGUF"u8);
            writer.Write(Version);
            writer.Write((ulong)tensors.Count);
            writer.Write((ulong)metadata.Count);
            metadata.WriteTo(writer);
            long offset = 0;
            foreach (var t in tensors)
            {
                GgufMetadata.WriteString(writer, t.Name);
                writer.Write((uint)t.Dimensions.Length);
                foreach (long d in t.Dimensions) writer.Write((ulong)d);
                writer.Write((uint)t.Type);
                writer.Write((ulong)offset);
                offset = Align(offset + t.ByteLength, alignment);
            }
        }
        Pad(file, alignment);
        long dataStart = file.Position;
        foreach (var t in tensors)
        {
            long before = file.Position;
            t.WriteData(file);
            long written = file.Position - before;
            if (written != t.ByteLength)
                throw new InvalidOperationException($"tensor '{t.Name}': wrote {written} bytes, its {t.Type} shape [{string.Join(", ", t.Dimensions)}] needs {t.ByteLength}");
            Pad(file, alignment, dataStart);
        }
    }

    private static long Align(long value, int alignment) => (value + alignment - 1) / alignment * alignment;

    private static void Pad(Stream stream, int alignment, long origin = 0)
    {
        long position = stream.Position - origin;
        long padding = Align(position, alignment) - position;
        for (long i = 0; i < padding; i++) stream.WriteByte(0);
    }
}
