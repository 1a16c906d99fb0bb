using System.Text;
using System.Text.Json;

namespace QuantPeft.Trainers.Data.Templates;

/// <summary>
/// JSON in and out of templates. <see cref="Dumps"/> is the <c>tojson</c> filter as transformers defines it:
/// Python's <c>json.dumps(x, ensure_ascii=False, indent=indent, separators=separators, sort_keys=sort_keys)</c>,
/// so non-ASCII text is kept, <c>", "</c> and <c>": "</c> separate items without an indent, and <c>","</c> with one.
/// </summary>
internal static class JinjaJson
{
    /// <summary>Converts parsed JSON to template values (objects keep their key order).</summary>
    public static object? FromElement(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.Object => e.EnumerateObject().Aggregate(new Dictionary<string, object?>(StringComparer.Ordinal), (d, p) =>
        {
            d[p.Name] = FromElement(p.Value);
            return d;
        }),
        JsonValueKind.Array => e.EnumerateArray().Select(FromElement).ToList(),
        JsonValueKind.String => e.GetString(),
        JsonValueKind.Number => e.TryGetInt64(out long l) ? (object)l : e.GetDouble(),
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        _ => null,
    };

    /// <summary>Python's <c>json.dumps</c> with <c>ensure_ascii=False</c>; null when the value holds something JSON cannot (undefined, a function).</summary>
    public static string? Dumps(object? value, int? indent, string? itemSeparator, string? keySeparator, bool sortKeys)
    {
        itemSeparator ??= indent is null ? ", " : ",";
        keySeparator ??= ": ";
        var sb = new StringBuilder();
        return Write(sb, value, indent, itemSeparator, keySeparator, sortKeys, 0) ? sb.ToString() : null;
    }

    private static bool Write(StringBuilder sb, object? v, int? indent, string itemSep, string keySep, bool sort, int depth)
    {
        switch (v)
        {
            case null: sb.Append("null"); return true;
            case bool b: sb.Append(b ? "true" : "false"); return true;
            case long l: sb.Append(l); return true;
            case double d:
                sb.Append(double.IsNaN(d) ? "NaN" : double.IsPositiveInfinity(d) ? "Infinity" : double.IsNegativeInfinity(d) ? "-Infinity" : JinjaValues.FloatRepr(d));
                return true;
            case string s: Quote(sb, s); return true;
            case List<object?> list:
                if (list.Count == 0)
                {
                    sb.Append("[]");
                    return true;
                }
                sb.Append('[');
                for (int i = 0; i < list.Count; i++)
                {
                    if (i > 0) sb.Append(itemSep);
                    NewLine(sb, indent, depth + 1);
                    if (!Write(sb, list[i], indent, itemSep, keySep, sort, depth + 1)) return false;
                }
                NewLine(sb, indent, depth);
                sb.Append(']');
                return true;
            case Dictionary<string, object?> dict:
                if (dict.Count == 0)
                {
                    sb.Append("{}");
                    return true;
                }
                sb.Append('{');
                IEnumerable<KeyValuePair<string, object?>> items = sort ? dict.OrderBy(kv => kv.Key, StringComparer.Ordinal) : dict;
                bool first = true;
                foreach (var (key, value) in items)
                {
                    if (!first) sb.Append(itemSep);
                    first = false;
                    NewLine(sb, indent, depth + 1);
                    Quote(sb, key);
                    sb.Append(keySep);
                    if (!Write(sb, value, indent, itemSep, keySep, sort, depth + 1)) return false;
                }
                NewLine(sb, indent, depth);
                sb.Append('}');
                return true;
            default:
                return false;
        }
    }

    private static void NewLine(StringBuilder sb, int? indent, int depth)
    {
        if (indent is int n) sb.Append('\n').Append(' ', n * depth);
    }

    private static void Quote(StringBuilder sb, string s)
    {
        sb.Append('"');
        foreach (char c in s)
        {
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                case '\b': sb.Append("\\b"); break;
                case '\f': sb.Append("\\f"); break;
                default:
                    if (c < 0x20) sb.Append($"\\u{(int)c:x4}");
                    else sb.Append(c);
                    break;
            }
        }
        sb.Append('"');
    }
}
