using System.Globalization;

namespace QuantPeft.Trainers.Data.Templates;

/// <summary>
/// The filters of <c>value | name(args)</c> that QuantPeft implements, with Jinja's meanings; <c>tojson</c> is
/// transformers' version (no HTML escaping, non-ASCII kept, <c>indent</c>/<c>separators</c>/<c>sort_keys</c>).
/// </summary>
internal static class JinjaFilters
{
    private static readonly HashSet<string> Names =
    [
        "trim", "tojson", "length", "count", "upper", "lower", "title", "capitalize", "replace", "join", "first", "last",
        "selectattr", "rejectattr", "select", "reject", "map", "items", "default", "d", "string", "int", "float", "list",
        "abs", "round", "reverse", "sort", "unique", "dictsort", "safe", "escape", "e", "indent", "wordcount", "sum",
        "min", "max", "batch",
    ];

    /// <summary>Fails at parse time on a filter QuantPeft does not implement.</summary>
    public static void Check(string name, string source, int line)
    {
        if (!Names.Contains(name)) throw new TemplateException(source, line, $"unsupported filter '| {name}'");
    }

    public static object? Apply(string name, object? v, JinjaArguments a)
    {
        switch (name)
        {
            case "trim":
                return JinjaMethods.Strip(JinjaValues.Str(v), a.Allow("chars").Get(0, "chars"), true, true, a);
            case "tojson":
            {
                a.Allow("indent", "ensure_ascii", "separators", "sort_keys");
                object? indent = a.Get(0, "indent");
                if (a.Get(1, "ensure_ascii") is true) throw a.Fail("ensure_ascii=true is not supported");
                string? itemSep = null, keySep = null;
                if (a.Get(2, "separators") is List<object?> { Count: 2 } seps && seps[0] is string s0 && seps[1] is string s1)
                    (itemSep, keySep) = (s0, s1);
                int? n = indent switch
                {
                    null => null,
                    long l => (int)l,
                    _ => throw a.Fail($"indent must be an integer, found {JinjaValues.TypeName(indent)}"),
                };
                return JinjaJson.Dumps(v, n, itemSep, keySep, JinjaValues.Truthy(a.Get(3, "sort_keys", false)))
                    ?? throw a.Fail($"cannot serialize {JinjaValues.TypeName(v)} (or something inside it) to JSON");
            }
            case "length" or "count":
                a.Allow();
                return v switch
                {
                    string s => (long)JinjaValues.TextElements(s).Count(),
                    System.Collections.ICollection c => (long)c.Count,
                    Undefined => 0L,
                    _ => throw a.Fail($"{JinjaValues.TypeName(v)} has no length"),
                };
            case "upper": a.Allow(); return JinjaValues.Str(v).ToUpperInvariant();
            case "lower": a.Allow(); return JinjaValues.Str(v).ToLowerInvariant();
            case "title": a.Allow(); return JinjaMethods.Title(JinjaValues.Str(v));
            case "capitalize": a.Allow(); return JinjaMethods.Capitalize(JinjaValues.Str(v));
            case "replace": return JinjaMethods.Replace(JinjaValues.Str(v), a.Allow("old", "new", "count"));
            case "join":
            {
                a.Allow("d", "attribute");
                var items = Items(v, a);
                if (a.Get(1, "attribute") is string attr) items = [.. items.Select(x => JinjaOperators.Attribute(x, attr, a.Fail))];
                return string.Join(a.String(0, "d", ""), items.Select(JinjaValues.Str));
            }
            case "first":
            {
                a.Allow();
                var items = Items(v, a);
                return items.Count > 0 ? items[0] : new Undefined("first of an empty sequence");
            }
            case "last":
            {
                a.Allow();
                var items = Items(v, a);
                return items.Count > 0 ? items[^1] : new Undefined("last of an empty sequence");
            }
            case "selectattr" or "rejectattr":
            {
                string attr = a.String(0, "attribute");
                bool keep = name == "selectattr";
                return Items(v, a).Where(x => Select(JinjaOperators.Attribute(x, attr, a.Fail), a, 1) == keep).ToList();
            }
            case "select" or "reject":
            {
                bool keep = name == "select";
                return Items(v, a).Where(x => Select(x, a, 0) == keep).ToList();
            }
            case "map":
            {
                if (a.Keywords.TryGetValue("attribute", out var attribute))
                {
                    string attr = attribute as string ?? throw a.Fail("attribute must be a string");
                    bool hasDefault = a.Keywords.TryGetValue("default", out var fallback);
                    return Items(v, a).Select(x =>
                    {
                        object? r = JinjaOperators.Attribute(x, attr, a.Fail);
                        return r is Undefined && hasDefault ? fallback : r;
                    }).ToList();
                }
                string filter = a.String(0, "filter");
                Check(filter, "", a.Line);
                var rest = new JinjaArguments(a.Positional.Skip(1).ToList(), a.Keywords, $"filter '{filter}'", "", a.Line);
                return Items(v, a).Select(x => Apply(filter, x, rest)).ToList();
            }
            case "items":
                a.Allow();
                return v switch
                {
                    Dictionary<string, object?> d => d.Select(kv => (object?)new JinjaTuple([kv.Key, kv.Value])).ToList(),
                    Undefined => new List<object?>(),
                    _ => throw a.Fail($"expects a mapping, found {JinjaValues.TypeName(v)}"),
                };
            case "default" or "d":
            {
                a.Allow("default_value", "boolean");
                bool boolean = JinjaValues.Truthy(a.Get(1, "boolean", false));
                return v is Undefined || (boolean && !JinjaValues.Truthy(v)) ? a.Get(0, "default_value", "") : v;
            }
            case "string": a.Allow(); return JinjaValues.Str(v);
            case "int":
                a.Allow("default", "base");
                return v switch
                {
                    long l => l,
                    bool b => b ? 1L : 0L,
                    double d => (long)Math.Truncate(d),
                    string s when long.TryParse(s.Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out long p) => p,
                    string s when double.TryParse(s.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out double f) => (long)Math.Truncate(f),
                    _ => a.Get(0, "default", 0L),
                };
            case "float":
                a.Allow("default");
                return v switch
                {
                    long or bool or double => JinjaValues.ToDouble(v),
                    string s when double.TryParse(s.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out double f) => f,
                    _ => a.Get(0, "default", 0.0),
                };
            case "list": a.Allow(); return Items(v, a).ToList();
            case "abs":
                a.Allow();
                return v switch { long l => (object)Math.Abs(l), double d => Math.Abs(d), bool b => b ? 1L : 0L, _ => throw a.Fail($"expects a number, found {JinjaValues.TypeName(v)}") };
            case "round":
            {
                a.Allow("precision", "method");
                int digits = (int)a.Integer(0, "precision", 0);
                string method = a.String(1, "method", "common");
                double x = JinjaValues.IsNumber(v) ? JinjaValues.ToDouble(v) : throw a.Fail($"expects a number, found {JinjaValues.TypeName(v)}");
                double scale = Math.Pow(10, digits);
                return method switch
                {
                    "common" => Math.Round(x * scale, MidpointRounding.ToEven) / scale,   // Python's round(): halves to even
                    "floor" => Math.Floor(x * scale) / scale,
                    "ceil" => Math.Ceiling(x * scale) / scale,
                    _ => throw a.Fail($"method must be common, floor or ceil, found '{method}'"),
                };
            }
            case "reverse":
                a.Allow();
                return v is string rs ? string.Concat(JinjaValues.TextElements(rs).Reverse()) : Items(v, a).AsEnumerable().Reverse().ToList();
            case "sort":
            {
                a.Allow("reverse", "case_sensitive", "attribute");
                var items = Items(v, a).ToList();
                string? attr = a.Get(2, "attribute") as string;
                object? Key(object? x) => attr is null ? x : JinjaOperators.Attribute(x, attr, a.Fail);
                bool caseSensitive = JinjaValues.Truthy(a.Get(1, "case_sensitive", false));
                object? Fold(object? x) => !caseSensitive && x is string s ? s.ToLowerInvariant() : x;
                items.Sort((x, y) => JinjaValues.Compare(Fold(Key(x)), Fold(Key(y))) ?? throw a.Fail("cannot order the items"));
                if (JinjaValues.Truthy(a.Get(0, "reverse", false))) items.Reverse();
                return items;
            }
            case "unique":
            {
                a.Allow("case_sensitive", "attribute");
                var result = new List<object?>();
                foreach (object? x in Items(v, a))
                    if (!result.Any(r => JinjaValues.Equal(r, x))) result.Add(x);
                return result;
            }
            case "dictsort":
            {
                a.Allow("case_sensitive", "by", "reverse");
                if (v is not Dictionary<string, object?> d) throw a.Fail($"expects a mapping, found {JinjaValues.TypeName(v)}");
                bool byValue = a.String(1, "by", "key") == "value";
                bool cs = JinjaValues.Truthy(a.Get(0, "case_sensitive", false));
                object? K(KeyValuePair<string, object?> kv)
                {
                    object? x = byValue ? kv.Value : kv.Key;
                    return !cs && x is string s ? s.ToLowerInvariant() : x;
                }
                var pairs = d.ToList();
                pairs.Sort((x, y) => JinjaValues.Compare(K(x), K(y)) ?? throw a.Fail("cannot order the items"));
                if (JinjaValues.Truthy(a.Get(2, "reverse", false))) pairs.Reverse();
                return pairs.Select(kv => (object?)new JinjaTuple([kv.Key, kv.Value])).ToList();
            }
            case "safe": a.Allow(); return v;
            case "escape" or "e":
                a.Allow();
                // markupsafe's escaping: & < > " ' only.
                return JinjaValues.Str(v).Replace("&", "&amp;", StringComparison.Ordinal).Replace("<", "&lt;", StringComparison.Ordinal)
                    .Replace(">", "&gt;", StringComparison.Ordinal).Replace("\"", "&#34;", StringComparison.Ordinal).Replace("'", "&#39;", StringComparison.Ordinal);
            case "indent":
            {
                a.Allow("width", "first", "blank");
                string pad = a.Get(0, "width", 4L) is string ws ? ws : new string(' ', (int)a.Integer(0, "width", 4));
                bool first = JinjaValues.Truthy(a.Get(1, "first", false)), blank = JinjaValues.Truthy(a.Get(2, "blank", false));
                string[] lines = JinjaValues.Str(v).Split('\n');
                for (int i = 0; i < lines.Length; i++)
                    if ((i > 0 || first) && (blank || lines[i].Trim().Length > 0)) lines[i] = pad + lines[i];
                return string.Join('\n', lines);
            }
            case "wordcount": a.Allow(); return (long)JinjaValues.Str(v).Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries).Length;
            case "sum":
            {
                a.Allow("attribute", "start");
                object? total = a.Get(1, "start", 0L);
                string? attr = a.Get(0, "attribute") as string;
                foreach (object? x in Items(v, a))
                    total = JinjaOperators.Binary("+", total, attr is null ? x : JinjaOperators.Attribute(x, attr, a.Fail), a.Fail);
                return total;
            }
            case "min" or "max":
            {
                a.Allow("case_sensitive", "attribute");
                var items = Items(v, a);
                if (items.Count == 0) return new Undefined($"{name} of an empty sequence");
                object? best = items[0];
                foreach (object? x in items.Skip(1))
                {
                    int c = JinjaValues.Compare(x, best) ?? throw a.Fail("cannot order the items");
                    if (name == "min" ? c < 0 : c > 0) best = x;
                }
                return best;
            }
            case "batch":
            {
                a.Allow("linecount", "fill_with");
                int size = (int)a.Integer(0, "linecount", 1);
                if (size < 1) throw a.Fail("linecount must be at least 1");
                var items = Items(v, a);
                var batches = items.Chunk(size).Select(c => (object?)c.ToList()).ToList();
                if (a.Has(1, "fill_with") && batches.Count > 0 && batches[^1] is List<object?> lastBatch)
                    while (lastBatch.Count < size) lastBatch.Add(a.Get(1, "fill_with"));
                return batches;
            }
            default:
                throw a.Fail("unsupported filter");
        }
    }

    private static List<object?> Items(object? v, JinjaArguments a) =>
        JinjaValues.Iterate(v) ?? throw a.Fail($"expects a sequence, found {JinjaValues.TypeName(v)}");

    // select/reject and selectattr/rejectattr: the test is the argument at testIndex (truthiness when absent).
    private static bool Select(object? value, JinjaArguments a, int testIndex)
    {
        if (a.Positional.Count <= testIndex) return JinjaValues.Truthy(value);
        string test = a.Positional[testIndex] as string ?? throw a.Fail("the test name must be a string");
        JinjaTests.Check(test, "", a.Line);
        var rest = new JinjaArguments(a.Positional.Skip(testIndex + 1).ToList(), [], $"test '{test}'", "", a.Line);
        return JinjaTests.Apply(test, value, rest);
    }
}
