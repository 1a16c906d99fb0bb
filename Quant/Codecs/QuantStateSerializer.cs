using System.Globalization;
using System.Text;
using System.Text.Json;

namespace QuantPeft.Quant.Codecs;

/// <summary>
/// Lossless conversion between (packed codes, <see cref="QuantState"/>) and the tensors bitsandbytes / transformers
/// write for a <c>Linear4bit</c> weight (<c>QuantState.as_dict(packed=True)</c> plus the weight itself).
/// </summary>
/// <remarks>
/// Keys, in bitsandbytes' order: <c>weight</c> (U8 [(n+1)/2, 1]), <c>weight.absmax</c> (F32 [blocks], or U8 when nested),
/// <c>weight.quant_map</c> (F32 [16]), <c>weight.nested_absmax</c> (F32), <c>weight.nested_quant_map</c> (F32 [256]),
/// <c>weight.quant_state.bitsandbytes__nf4</c> or <c>__fp4</c> (U8: UTF-8 JSON of quant_type, blocksize, dtype,
/// shape and, when nested, nested_blocksize, nested_dtype, nested_offset). The JSON is written the way Python's
/// <c>json.dumps</c> writes it, and <c>nested_offset</c> as the shortest decimal that reads back to the same float.
/// </remarks>
public static class QuantStateSerializer
{
    /// <summary>The key suffix of the packed weight.</summary>
    public const string WeightKey = "weight";

    /// <summary>The key suffix of the JSON tensor for <paramref name="type"/>.</summary>
    public static string StateKey(FourBitType type) => "weight.quant_state.bitsandbytes__" + TypeName(type);

    /// <summary>bitsandbytes' <c>quant_type</c> string.</summary>
    public static string TypeName(FourBitType type) => type == FourBitType.Nf4 ? "nf4" : "fp4";

    /// <summary>The tensors of one quantized weight.</summary>
    /// <exception cref="QuantInputException"><paramref name="packed"/> does not have <c>(n+1)/2</c> bytes.</exception>
    public static IReadOnlyList<SerializedTensor> ToTensors(byte[] packed, QuantState state)
    {
        long expected = (state.ElementCount + 1L) / 2;
        if (packed.Length != expected)
            throw new QuantInputException($"weight: expected {expected} packed bytes for {state.ElementCount} elements, found {packed.Length}");
        var tensors = new List<SerializedTensor> { new(WeightKey, "U8", [packed.Length, 1], packed) };
        if (state.Nested is { } nested)
            tensors.Add(new("weight.absmax", "U8", [nested.Codes.Length], nested.Codes.ToArray()));
        else
            tensors.Add(new("weight.absmax", "F32", [state.RawAbsMax.Length], FloatBytes(state.RawAbsMax)));
        tensors.Add(new("weight.quant_map", "F32", [state.Code.Length], FloatBytes(state.Code)));
        if (state.Nested is { } n2)
        {
            tensors.Add(new("weight.nested_absmax", "F32", [n2.Scales.Length], FloatBytes(n2.Scales)));
            tensors.Add(new("weight.nested_quant_map", "F32", [256], FloatBytes(CodeTables.DynamicSigned)));
        }
        byte[] json = Encoding.UTF8.GetBytes(Json(state));
        tensors.Add(new(StateKey(state.QuantType), "U8", [json.Length], json));
        return tensors;
    }

    /// <summary>Reads the tensors of one quantized weight back; keys are matched by suffix, so a module prefix may be present.</summary>
    /// <exception cref="QuantInputException">A tensor is missing, has the wrong dtype or size, or the JSON is malformed or inconsistent.</exception>
    public static (byte[] Packed, QuantState State) FromTensors(IEnumerable<SerializedTensor> tensors)
    {
        var byKey = new Dictionary<string, SerializedTensor>(StringComparer.Ordinal);
        foreach (var t in tensors) byKey[Suffix(t.NameSuffix)] = t;
        FourBitType type = byKey.ContainsKey(StateKey(FourBitType.Nf4)) ? FourBitType.Nf4
            : byKey.ContainsKey(StateKey(FourBitType.Fp4)) ? FourBitType.Fp4
            : throw new QuantInputException($"{StateKey(FourBitType.Nf4)}: expected a quant-state tensor ({StateKey(FourBitType.Nf4)} or {StateKey(FourBitType.Fp4)}), found none");
        string stateKey = StateKey(type);
        var meta = ParseJson(Require(byKey, stateKey, "U8").Data, stateKey, type);
        byte[] packed = Require(byKey, WeightKey, "U8").Data;
        float[] code = Floats(Require(byKey, "weight.quant_map", "F32"));
        SerializedTensor absmax = Require(byKey, "weight.absmax", meta.Nested ? "U8" : "F32");
        QuantState state;
        if (meta.Nested)
        {
            float[] nestedMap = Floats(Require(byKey, "weight.nested_quant_map", "F32"));
            if (!nestedMap.AsSpan().SequenceEqual(CodeTables.DynamicSigned))
                throw new QuantInputException("weight.nested_quant_map: expected bitsandbytes' signed dynamic map (256 values), found a different table");
            var nested = new NestedAbsMax(absmax.Data, Floats(Require(byKey, "weight.nested_absmax", "F32")), meta.Offset, meta.NestedBlockSize);
            state = new QuantState(type, meta.BlockSize, meta.Shape, meta.DType, null, nested, code);
        }
        else
        {
            state = new QuantState(type, meta.BlockSize, meta.Shape, meta.DType, Floats(absmax), null, code);
        }
        if (packed.Length != (state.ElementCount + 1L) / 2)
            throw new QuantInputException($"weight: expected {(state.ElementCount + 1L) / 2} packed bytes for shape [{string.Join(", ", meta.Shape)}], found {packed.Length}");
        return (packed, state);
    }

    private static string Json(QuantState s)
    {
        var b = new StringBuilder();
        b.Append("{\"quant_type\": \"").Append(TypeName(s.QuantType)).Append("\", \"blocksize\": ").Append(s.BlockSize)
         .Append(", \"dtype\": \"").Append(s.DType.TorchName()).Append("\", \"shape\": [")
         .Append(string.Join(", ", s.Shape.Select(d => d.ToString(CultureInfo.InvariantCulture)))).Append(']');
        if (s.Nested is { } n)
            b.Append(", \"nested_blocksize\": ").Append(n.BlockSize).Append(", \"nested_dtype\": \"float32\", \"nested_offset\": ")
             .Append(PythonFloat(n.Offset));
        return b.Append('}').ToString();
    }

    // Python's repr of the float64 that float32 .item() returns: shortest round-trip digits, 'e' exponent, '.0' on integers.
    private static string PythonFloat(float value)
    {
        string text = ((double)value).ToString("R", CultureInfo.InvariantCulture).Replace('E', 'e');
        return text.Contains('.') || text.Contains('e') ? text : text + ".0";
    }

    private sealed record Metadata(int BlockSize, ElementType DType, long[] Shape, bool Nested, int NestedBlockSize, float Offset);

    private static Metadata ParseJson(byte[] utf8, string key, FourBitType type)
    {
        try
        {
            using var doc = JsonDocument.Parse(utf8);
            JsonElement root = doc.RootElement;
            string quantType = Field(root, "quant_type", key).GetString() ?? "";
            if (quantType != TypeName(type))
                throw new QuantInputException($"{key}: field quant_type: expected '{TypeName(type)}', found '{quantType}'");
            int blockSize = Field(root, "blocksize", key).GetInt32();
            ElementType dtype = ElementTypeNames.ParseTorchName(Field(root, "dtype", key).GetString() ?? "", key + ": field dtype");
            long[] shape = [.. Field(root, "shape", key).EnumerateArray().Select(e => e.GetInt64())];
            bool nested = root.TryGetProperty("nested_offset", out JsonElement offset);
            if (!nested) return new Metadata(blockSize, dtype, shape, false, 0, 0);
            string nestedDType = Field(root, "nested_dtype", key).GetString() ?? "";
            if (nestedDType is not ("float32" or "torch.float32"))
                throw new QuantInputException($"{key}: field nested_dtype: expected 'float32', found '{nestedDType}'");
            return new Metadata(blockSize, dtype, shape, true, Field(root, "nested_blocksize", key).GetInt32(), (float)offset.GetDouble());
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException)
        {
            throw new QuantInputException($"{key}: expected bitsandbytes quant-state JSON, found malformed content ({e.Message})");
        }
    }

    private static JsonElement Field(JsonElement root, string name, string key) =>
        root.TryGetProperty(name, out JsonElement value) ? value
            : throw new QuantInputException($"{key}: expected field '{name}' in the quant-state JSON, found none");

    private static string Suffix(string name)
    {
        int at = name.IndexOf("weight", StringComparison.Ordinal);
        while (at > 0 && name[at - 1] != '.') at = name.IndexOf("weight", at + 1, StringComparison.Ordinal);
        return at < 0 ? name : name[at..];
    }

    private static SerializedTensor Require(Dictionary<string, SerializedTensor> byKey, string key, string dtype)
    {
        if (!byKey.TryGetValue(key, out var t)) throw new QuantInputException($"{key}: expected this tensor, found none");
        if (t.DType != dtype) throw new QuantInputException($"{key}: expected dtype {dtype}, found {t.DType}");
        long elements = t.Shape.Aggregate(1L, (a, d) => a * d);
        int size = dtype == "F32" ? 4 : 1;
        if (elements * size != t.Data.Length)
            throw new QuantInputException($"{key}: expected {elements * size} bytes for shape [{string.Join(", ", t.Shape)}], found {t.Data.Length}");
        return t;
    }

    private static byte[] FloatBytes(ReadOnlySpan<float> values)
    {
        var bytes = new byte[values.Length * 4];
        for (int i = 0; i < values.Length; i++) BitConverter.TryWriteBytes(bytes.AsSpan(i * 4), values[i]);
        return bytes;
    }

    private static float[] Floats(SerializedTensor t)
    {
        var values = new float[t.Data.Length / 4];
        for (int i = 0; i < values.Length; i++) values[i] = BitConverter.ToSingle(t.Data, i * 4);
        return values;
    }
}
