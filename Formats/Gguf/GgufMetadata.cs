using System.Text;

namespace QuantPeft.Formats.Gguf;

/// <summary>
/// The key-value section of a GGUF file, in insertion order (llama.cpp reads keys by name; order only matters to a
/// human reading a dump). Keys are unique: setting a key again replaces its value in place.
/// </summary>
public sealed class GgufMetadata
{
    private readonly List<(string Key, GgufValueType Type, object Value)> _entries = [];

    /// <summary>Number of keys.</summary>
    public int Count => _entries.Count;

    /// <summary>The keys, in order.</summary>
    public IEnumerable<string> Keys => _entries.Select(e => e.Key);

    /// <summary>The value stored under <paramref name="key"/>, or null.</summary>
    public object? this[string key] => _entries.FirstOrDefault(e => e.Key == key).Value;

    /// <summary>Sets a string value.</summary>
    public void Set(string key, string value) => Put(key, GgufValueType.String, value);

    /// <summary>Sets a uint32 value.</summary>
    public void SetUInt32(string key, uint value) => Put(key, GgufValueType.UInt32, value);

    /// <summary>Sets a float32 value.</summary>
    public void SetFloat32(string key, float value) => Put(key, GgufValueType.Float32, value);

    /// <summary>Sets a bool value.</summary>
    public void SetBool(string key, bool value) => Put(key, GgufValueType.Bool, value);

    /// <summary>Sets an array of strings.</summary>
    public void SetStrings(string key, IReadOnlyList<string> values) => Put(key, GgufValueType.Array, (GgufValueType.String, (object)values));

    /// <summary>Sets an array of int32.</summary>
    public void SetInt32s(string key, IReadOnlyList<int> values) => Put(key, GgufValueType.Array, (GgufValueType.Int32, (object)values));

    /// <summary>Sets an array of float32.</summary>
    public void SetFloat32s(string key, IReadOnlyList<float> values) => Put(key, GgufValueType.Array, (GgufValueType.Float32, (object)values));

    private void Put(string key, GgufValueType type, object value)
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        int at = _entries.FindIndex(e => e.Key == key);
        if (at >= 0) _entries[at] = (key, type, value);
        else _entries.Add((key, type, value));
    }

    /// <summary>Writes every key-value pair in GGUF's encoding (little-endian).</summary>
    internal void WriteTo(BinaryWriter writer)
    {
        foreach (var (key, type, value) in _entries)
        {
            WriteString(writer, key);
            writer.Write((uint)type);
            if (type == GgufValueType.Array)
            {
                var (elementType, items) = ((GgufValueType, object))value;
                writer.Write((uint)elementType);
                switch (items)
                {
                    case IReadOnlyList<string> s:
                        writer.Write((ulong)s.Count);
                        foreach (var v in s) WriteString(writer, v);
                        break;
                    case IReadOnlyList<int> i:
                        writer.Write((ulong)i.Count);
                        foreach (var v in i) writer.Write(v);
                        break;
                    case IReadOnlyList<float> f:
                        writer.Write((ulong)f.Count);
                        foreach (var v in f) writer.Write(v);
                        break;
                }
                continue;
            }
            switch (value)
            {
                case string s: WriteString(writer, s); break;
                case uint u: writer.Write(u); break;
                case float f: writer.Write(f); break;
                case bool b: writer.Write((byte)(b ? 1 : 0)); break;
            }
        }
    }

    internal static void WriteString(BinaryWriter writer, string value)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(value);
        writer.Write((ulong)bytes.Length);
        writer.Write(bytes);
    }
}
