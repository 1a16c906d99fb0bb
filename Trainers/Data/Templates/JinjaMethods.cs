using System.Globalization;

namespace QuantPeft.Trainers.Data.Templates;

/// <summary>
/// The Python methods templates call on values: string methods (<c>startswith</c>, <c>split</c>, <c>strip</c>, …)
/// and the read-only mapping methods (<c>items</c>, <c>keys</c>, <c>values</c>, <c>get</c>). transformers renders in
/// an immutable sandbox, so methods that change a list or mapping are refused there too.
/// </summary>
internal static class JinjaMethods
{
    /// <summary>The method <paramref name="name"/> bound to <paramref name="obj"/>, or null when it has none.</summary>
    public static Callable? Bind(object? obj, string name) => obj switch
    {
        string s => StringMethod(s, name),
        Namespace => null,
        Dictionary<string, object?> d => DictMethod(d, name),
        List<object?> l => ListMethod(l, name),
        _ => null,
    };

    private static Callable Method(string name, Func<JinjaArguments, object?> body) =>
        new(name, (p, k, line) => body(new JinjaArguments(p, k, $"method '{name}'", "", line)));

    private static Callable? DictMethod(Dictionary<string, object?> d, string name) => name switch
    {
        "items" => Method(name, a => { a.Allow(); return d.Select(kv => (object?)new JinjaTuple([kv.Key, kv.Value])).ToList(); }),
        "keys" => Method(name, a => { a.Allow(); return d.Keys.Select(k => (object?)k).ToList(); }),
        "values" => Method(name, a => { a.Allow(); return d.Values.ToList(); }),
        "get" => Method(name, a =>
        {
            a.Allow("key", "default");
            return a.Get(0, "key") is string k && d.TryGetValue(k, out var v) ? v : a.Get(1, "default");
        }),
        "update" or "pop" or "clear" or "setdefault" or "popitem" => Method(name, a => throw a.Fail("modifies a mapping, which the sandbox that renders chat templates forbids")),
        _ => null,
    };

    private static Callable? ListMethod(List<object?> l, string name) => name switch
    {
        "index" => Method(name, a =>
        {
            a.Allow("value");
            int i = l.FindIndex(x => JinjaValues.Equal(x, a.Get(0, "value")));
            return i >= 0 ? (long)i : throw a.Fail("value is not in the list");
        }),
        "count" => Method(name, a => { a.Allow("value"); return (long)l.Count(x => JinjaValues.Equal(x, a.Get(0, "value"))); }),
        "append" or "extend" or "insert" or "pop" or "remove" or "sort" or "reverse" or "clear" =>
            Method(name, a => throw a.Fail("modifies a list, which the sandbox that renders chat templates forbids")),
        _ => null,
    };

    private static Callable? StringMethod(string s, string name) => name switch
    {
        "startswith" => Method(name, a => Affix(s, a, (x, p) => x.StartsWith(p, StringComparison.Ordinal))),
        "endswith" => Method(name, a => Affix(s, a, (x, p) => x.EndsWith(p, StringComparison.Ordinal))),
        "strip" => Method(name, a => Strip(s, a.Allow("chars").Get(0, "chars"), true, true, a)),
        "lstrip" => Method(name, a => Strip(s, a.Allow("chars").Get(0, "chars"), true, false, a)),
        "rstrip" => Method(name, a => Strip(s, a.Allow("chars").Get(0, "chars"), false, true, a)),
        "split" => Method(name, a => Split(s, a.Allow("sep", "maxsplit"), fromRight: false)),
        "rsplit" => Method(name, a => Split(s, a.Allow("sep", "maxsplit"), fromRight: true)),
        "splitlines" => Method(name, a => { a.Allow(); return s.Split('\n').Select(x => (object?)x.TrimEnd('\r')).ToList() is var lines && s.EndsWith('\n') ? lines.SkipLast(1).ToList() : lines; }),
        "upper" => Method(name, a => { a.Allow(); return s.ToUpperInvariant(); }),
        "lower" => Method(name, a => { a.Allow(); return s.ToLowerInvariant(); }),
        "title" => Method(name, a => { a.Allow(); return Title(s); }),
        "capitalize" => Method(name, a => { a.Allow(); return Capitalize(s); }),
        "replace" => Method(name, a => Replace(s, a.Allow("old", "new", "count"))),
        "find" => Method(name, a => (long)s.IndexOf(a.Allow("sub").String(0, "sub"), StringComparison.Ordinal)),
        "rfind" => Method(name, a => (long)s.LastIndexOf(a.Allow("sub").String(0, "sub"), StringComparison.Ordinal)),
        "count" => Method(name, a => (long)Count(s, a.Allow("sub").String(0, "sub"))),
        "join" => Method(name, a => string.Join(s, (JinjaValues.Iterate(a.Allow("iterable").Get(0, "iterable")) ?? throw a.Fail("needs an iterable")).Select(JinjaValues.Str))),
        "isdigit" => Method(name, a => s.Length > 0 && s.All(char.IsDigit)),
        "isalpha" => Method(name, a => s.Length > 0 && s.All(char.IsLetter)),
        "isspace" => Method(name, a => s.Length > 0 && s.All(char.IsWhiteSpace)),
        "isupper" => Method(name, a => s.Any(char.IsLetter) && s == s.ToUpperInvariant()),
        "islower" => Method(name, a => s.Any(char.IsLetter) && s == s.ToLowerInvariant()),
        _ => null,
    };

    private static object Affix(string s, JinjaArguments a, Func<string, string, bool> test)
    {
        a.Allow("prefix", "start");
        string x = a.Has(1, "start") ? s[(int)Math.Clamp(a.Integer(1, "start", 0), 0, s.Length)..] : s;
        return a.Get(0, "prefix") switch
        {
            string p => test(x, p),
            List<object?> options => options.Any(o => o is string p && test(x, p)),
            var v => throw a.Fail($"expects a string or a tuple of strings, found {JinjaValues.TypeName(v)}"),
        };
    }

    /// <summary>Python's <c>str.strip([chars])</c>: whitespace when <paramref name="chars"/> is none.</summary>
    public static string Strip(string s, object? chars, bool start, bool end, JinjaArguments a)
    {
        if (chars is null or Undefined)
        {
            if (start) s = s.TrimStart();
            if (end) s = s.TrimEnd();
            return s;
        }
        if (chars is not string set) throw a.Fail($"chars must be a string, found {JinjaValues.TypeName(chars)}");
        char[] cs = set.ToCharArray();
        if (start) s = s.TrimStart(cs);
        if (end) s = s.TrimEnd(cs);
        return s;
    }

    private static List<object?> Split(string s, JinjaArguments a, bool fromRight)
    {
        object? sep = a.Get(0, "sep");
        long max = a.Integer(1, "maxsplit", -1);
        if (sep is null)
        {
            // No separator: runs of whitespace split, and leading/trailing whitespace gives no empty parts.
            var words = s.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries).ToList();
            if (max < 0 || words.Count <= max + 1) return [.. words];
            if (!fromRight)
            {
                var head = new List<object?>();
                string rest = s.TrimStart();
                for (int i = 0; i < max; i++)
                {
                    int cut = rest.IndexOfAny([' ', '\t', '\n', '\r', '\f', '\v']);
                    head.Add(rest[..cut]);
                    rest = rest[cut..].TrimStart();
                }
                head.Add(rest);
                return head;
            }
            throw a.Fail("rsplit with maxsplit and no separator is not supported");
        }
        if (sep is not string separator || separator.Length == 0) throw a.Fail("separator must be a non-empty string");
        if (max < 0) return [.. s.Split(separator)];
        if (!fromRight) return [.. s.Split(separator, (int)Math.Min(int.MaxValue, max + 1))];
        var parts = new List<object?>();
        string remaining = s;
        for (long i = 0; i < max; i++)
        {
            int at = remaining.LastIndexOf(separator, StringComparison.Ordinal);
            if (at < 0) break;
            parts.Insert(0, remaining[(at + separator.Length)..]);
            remaining = remaining[..at];
        }
        parts.Insert(0, remaining);
        return parts;
    }

    public static string Replace(string s, JinjaArguments a)
    {
        string old = a.String(0, "old"), replacement = a.String(1, "new");
        long count = a.Integer(2, "count", -1);
        if (count < 0) return old.Length == 0 ? InsertEverywhere(s, replacement) : s.Replace(old, replacement, StringComparison.Ordinal);
        var sb = new System.Text.StringBuilder();
        int pos = 0;
        for (long i = 0; i < count; i++)
        {
            int at = s.IndexOf(old, pos, StringComparison.Ordinal);
            if (at < 0 || old.Length == 0) break;
            sb.Append(s, pos, at - pos).Append(replacement);
            pos = at + old.Length;
        }
        return sb.Append(s, pos, s.Length - pos).ToString();
    }

    private static string InsertEverywhere(string s, string r) => r + string.Concat(s.Select(c => c + r));

    private static int Count(string s, string sub)
    {
        if (sub.Length == 0) return s.Length + 1;
        int n = 0;
        for (int i = s.IndexOf(sub, StringComparison.Ordinal); i >= 0; i = s.IndexOf(sub, i + sub.Length, StringComparison.Ordinal)) n++;
        return n;
    }

    public static string Title(string s)
    {
        var chars = s.ToCharArray();
        bool previousCased = false;
        for (int i = 0; i < chars.Length; i++)
        {
            char c = chars[i];
            chars[i] = previousCased ? char.ToLowerInvariant(c) : char.ToUpperInvariant(c);
            previousCased = char.IsLetter(c);
        }
        return new string(chars);
    }

    public static string Capitalize(string s) =>
        s.Length == 0 ? s : char.ToUpper(s[0], CultureInfo.InvariantCulture) + s[1..].ToLowerInvariant();
}
