using System.Globalization;
using System.Text;

namespace QuantPeft.Trainers.Data.Templates;

/// <summary>
/// A value that is not defined (a missing variable, key or attribute). Like Jinja's default <c>Undefined</c> it
/// prints as nothing, is false, iterates as empty and has length 0; any other use is an error.
/// </summary>
internal sealed class Undefined(string name)
{
    public string Name { get; } = name;
}

/// <summary>A Python tuple (<c>(a, b)</c>, the pairs of <c>items()</c>): a list that prints with parentheses.</summary>
internal sealed class JinjaTuple : List<object?>
{
    public JinjaTuple(IEnumerable<object?> items) : base(items) { }
}

/// <summary><c>namespace(...)</c>: an object whose attributes <c>{% set ns.x = … %}</c> may change from inside loops.</summary>
internal sealed class Namespace : Dictionary<string, object?>
{
    public Namespace() : base(StringComparer.Ordinal) { }
}

/// <summary>A function value: a global (<c>range</c>, <c>raise_exception</c>), a bound method or a macro.</summary>
/// <param name="Name">For error messages.</param>
/// <param name="Invoke">Positional arguments, keyword arguments, line of the call.</param>
internal sealed record Callable(string Name, Func<List<object?>, Dictionary<string, object?>, int, object?> Invoke);

/// <summary>The <c>loop</c> variable of a <c>for</c>.</summary>
internal sealed class LoopInfo(List<object?> items)
{
    public int Index0 { get; set; }

    public List<object?> Items { get; } = items;

    public object? Get(string name) => name switch
    {
        "index" => (long)Index0 + 1,
        "index0" => (long)Index0,
        "revindex" => (long)(Items.Count - Index0),
        "revindex0" => (long)(Items.Count - Index0 - 1),
        "first" => Index0 == 0,
        "last" => Index0 == Items.Count - 1,
        "length" => (long)Items.Count,
        "previtem" => Index0 > 0 ? Items[Index0 - 1] : new Undefined("loop.previtem"),
        "nextitem" => Index0 < Items.Count - 1 ? Items[Index0 + 1] : new Undefined("loop.nextitem"),
        "depth" => 1L,
        "depth0" => 0L,
        "cycle" => new Callable("loop.cycle", (a, _, _) => a.Count == 0 ? null : a[Index0 % a.Count]),
        _ => new Undefined($"loop.{name}"),
    };
}

/// <summary>Python semantics of template values: how they print, compare, and convert to bool.</summary>
internal static class JinjaValues
{
    public static bool Truthy(object? v) => v switch
    {
        null or Undefined => false,
        bool b => b,
        long l => l != 0,
        double d => d != 0,
        string s => s.Length > 0,
        System.Collections.ICollection c => c.Count > 0,
        _ => true,
    };

    /// <summary>Python's <c>str()</c> (what <c>{{ x }}</c> prints).</summary>
    public static string Str(object? v) => v switch
    {
        string s => s,
        Undefined => "",
        _ => Repr(v),
    };

    /// <summary>Python's <c>repr()</c> (how values print inside a list or dict).</summary>
    public static string Repr(object? v)
    {
        switch (v)
        {
            case null: return "None";
            case Undefined: return "";
            case bool b: return b ? "True" : "False";
            case long l: return l.ToString(CultureInfo.InvariantCulture);
            case double d: return FloatRepr(d);
            case string s: return StringRepr(s);
            case JinjaTuple tuple:
                return "(" + string.Join(", ", tuple.Select(Repr)) + (tuple.Count == 1 ? ",)" : ")");
            case List<object?> list:
                return "[" + string.Join(", ", list.Select(Repr)) + "]";
            case Namespace ns:
                return "<Namespace " + string.Join(", ", ns.Select(kv => $"{kv.Key}={Repr(kv.Value)}")) + ">";
            case Dictionary<string, object?> dict:
                return "{" + string.Join(", ", dict.Select(kv => $"{StringRepr(kv.Key)}: {Repr(kv.Value)}")) + "}";
            case Callable c: return $"<function {c.Name}>";
            default: return v.ToString() ?? "";
        }
    }

    /// <summary>Python's float repr: the shortest round-trip digits, fixed notation for exponents in [-4, 16).</summary>
    public static string FloatRepr(double d)
    {
        if (double.IsNaN(d)) return "nan";
        if (double.IsInfinity(d)) return d > 0 ? "inf" : "-inf";
        if (d == 0) return double.IsNegative(d) ? "-0.0" : "0.0";
        string r = Math.Abs(d).ToString("R", CultureInfo.InvariantCulture);
        int exp = 0;
        int e = r.IndexOf('E');
        if (e >= 0)
        {
            exp = int.Parse(r[(e + 1)..], CultureInfo.InvariantCulture);
            r = r[..e];
        }
        int dot = r.IndexOf('.');
        string intPart = dot < 0 ? r : r[..dot], fracPart = dot < 0 ? "" : r[(dot + 1)..];
        string digits;
        if (intPart.TrimStart('0').Length > 0)
        {
            string whole = intPart.TrimStart('0');
            exp += whole.Length - 1;
            digits = whole + fracPart;
        }
        else
        {
            int zeros = fracPart.Length - fracPart.TrimStart('0').Length;
            exp -= zeros + 1;
            digits = fracPart.TrimStart('0');
        }
        digits = digits.TrimEnd('0');
        if (digits.Length == 0) digits = "0";
        string sign = d < 0 ? "-" : "";
        if (exp >= 16 || exp < -4)
            return $"{sign}{digits[0]}{(digits.Length > 1 ? "." + digits[1..] : "")}e{(exp < 0 ? "-" : "+")}{Math.Abs(exp):00}";
        if (exp < 0) return $"{sign}0.{new string('0', -exp - 1)}{digits}";
        string ip = digits.Length > exp + 1 ? digits[..(exp + 1)] : digits.PadRight(exp + 1, '0');
        string fp = digits.Length > exp + 1 ? digits[(exp + 1)..] : "0";
        return $"{sign}{ip}.{fp}";
    }

    private static string StringRepr(string s)
    {
        char quote = s.Contains('\'') && !s.Contains('"') ? '"' : '\'';
        var sb = new StringBuilder().Append(quote);
        foreach (char c in s)
        {
            switch (c)
            {
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                default:
                    if (c == quote) sb.Append('\\').Append(c);
                    else if (c < 0x20 || c == 0x7f) sb.Append($"\\x{(int)c:x2}");
                    else sb.Append(c);
                    break;
            }
        }
        return sb.Append(quote).ToString();
    }

    public static string TypeName(object? v) => v switch
    {
        null => "none",
        Undefined u => $"undefined ('{u.Name}')",
        bool => "a boolean",
        long => "an integer",
        double => "a float",
        string => "a string",
        List<object?> => "a list",
        Namespace => "a namespace",
        Dictionary<string, object?> => "a mapping",
        Callable => "a function",
        _ => v.GetType().Name,
    };

    /// <summary>Python <c>==</c>: numbers compare by value (True == 1), lists and mappings element by element.</summary>
    public static bool Equal(object? a, object? b)
    {
        if (a is Undefined || b is Undefined) return a is Undefined && b is Undefined;
        if (a is null || b is null) return a is null && b is null;
        if (IsNumber(a) && IsNumber(b))
            return a is double || b is double ? ToDouble(a) == ToDouble(b) : ToLong(a) == ToLong(b);
        if (a is string sa && b is string sb) return sa == sb;
        if (a is List<object?> la && b is List<object?> lb)
            return la.Count == lb.Count && la.Zip(lb).All(p => Equal(p.First, p.Second));
        if (a is Dictionary<string, object?> da && b is Dictionary<string, object?> db)
            return da.Count == db.Count && da.All(kv => db.TryGetValue(kv.Key, out var v) && Equal(kv.Value, v));
        return ReferenceEquals(a, b);
    }

    /// <summary>Python ordering of numbers, strings and lists; null when the two cannot be ordered.</summary>
    public static int? Compare(object? a, object? b)
    {
        if (IsNumber(a) && IsNumber(b))
            return a is double || b is double ? ToDouble(a).CompareTo(ToDouble(b)) : ToLong(a).CompareTo(ToLong(b));
        if (a is string sa && b is string sb) return Math.Sign(string.CompareOrdinal(sa, sb));
        if (a is List<object?> la && b is List<object?> lb)
        {
            for (int i = 0; i < Math.Min(la.Count, lb.Count); i++)
            {
                if (Equal(la[i], lb[i])) continue;
                return Compare(la[i], lb[i]);
            }
            return la.Count.CompareTo(lb.Count);
        }
        return null;
    }

    public static bool IsNumber(object? v) => v is long or double or bool;

    public static long ToLong(object? v) => v switch
    {
        long l => l,
        bool b => b ? 1 : 0,
        double d => (long)d,
        _ => throw new InvalidCastException(),
    };

    public static double ToDouble(object? v) => v switch
    {
        long l => l,
        bool b => b ? 1 : 0,
        double d => d,
        _ => throw new InvalidCastException(),
    };

    /// <summary>What <c>for x in v</c> visits: list items, mapping keys, string characters; undefined is empty.</summary>
    public static List<object?>? Iterate(object? v) => v switch
    {
        List<object?> l => l,
        Namespace => null,
        Dictionary<string, object?> d => [.. d.Keys],
        string s => [.. TextElements(s)],
        Undefined => [],
        _ => null,
    };

    /// <summary>A string's code points as strings (Python iterates code points, not UTF-16 units).</summary>
    public static IEnumerable<object?> TextElements(string s)
    {
        for (int i = 0; i < s.Length; i++)
        {
            if (char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]))
            {
                yield return s.Substring(i++, 2);
                continue;
            }
            yield return s[i].ToString();
        }
    }
}
