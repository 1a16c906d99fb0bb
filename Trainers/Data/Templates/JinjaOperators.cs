namespace QuantPeft.Trainers.Data.Templates;

/// <summary>Python semantics of the operators, attribute and item access, and slicing on template values.</summary>
internal static class JinjaOperators
{
    public static object? Binary(string op, object? a, object? b, Func<string, TemplateException> fail)
    {
        if (op == "~") return JinjaValues.Str(a) + JinjaValues.Str(b);
        if (a is Undefined u1) throw fail($"'{u1.Name}' is undefined (operator '{op}')");
        if (b is Undefined u2) throw fail($"'{u2.Name}' is undefined (operator '{op}')");
        bool numbers = JinjaValues.IsNumber(a) && JinjaValues.IsNumber(b);
        bool floats = a is double || b is double;
        switch (op)
        {
            case "+":
                if (numbers) return floats ? JinjaValues.ToDouble(a) + JinjaValues.ToDouble(b) : (object)(JinjaValues.ToLong(a) + JinjaValues.ToLong(b));
                if (a is string sa && b is string sb) return sa + sb;
                if (a is List<object?> la && b is List<object?> lb) return (List<object?>)[.. la, .. lb];
                break;
            case "-":
                if (numbers) return floats ? JinjaValues.ToDouble(a) - JinjaValues.ToDouble(b) : (object)(JinjaValues.ToLong(a) - JinjaValues.ToLong(b));
                break;
            case "*":
                if (numbers) return floats ? JinjaValues.ToDouble(a) * JinjaValues.ToDouble(b) : (object)(JinjaValues.ToLong(a) * JinjaValues.ToLong(b));
                if (a is string s && b is long n) return string.Concat(Enumerable.Repeat(s, (int)Math.Max(0, n)));
                if (a is long n2 && b is string s2) return string.Concat(Enumerable.Repeat(s2, (int)Math.Max(0, n2)));
                if (a is List<object?> l && b is long k) return Enumerable.Repeat(l, (int)Math.Max(0, k)).SelectMany(x => x).ToList();
                break;
            case "/":
                if (numbers)
                {
                    double d = JinjaValues.ToDouble(b);
                    if (d == 0) throw fail("division by zero");
                    return JinjaValues.ToDouble(a) / d;
                }
                break;
            case "//":
                if (numbers)
                {
                    if (JinjaValues.ToDouble(b) == 0) throw fail("division by zero");
                    if (floats) return Math.Floor(JinjaValues.ToDouble(a) / JinjaValues.ToDouble(b));
                    long x = JinjaValues.ToLong(a), y = JinjaValues.ToLong(b);
                    long q = x / y;
                    return (x % y != 0 && (x < 0) != (y < 0)) ? q - 1 : q;
                }
                break;
            case "%":
                if (numbers)
                {
                    if (JinjaValues.ToDouble(b) == 0) throw fail("modulo by zero");
                    if (floats)
                    {
                        double x = JinjaValues.ToDouble(a), y = JinjaValues.ToDouble(b);
                        double r = x % y;
                        return r != 0 && (r < 0) != (y < 0) ? r + y : r;
                    }
                    long p = JinjaValues.ToLong(a), m = JinjaValues.ToLong(b);
                    long rem = p % m;
                    return rem != 0 && (rem < 0) != (m < 0) ? rem + m : rem;
                }
                break;
            case "**":
                if (numbers)
                {
                    if (!floats && JinjaValues.ToLong(b) >= 0) return (long)Math.Pow(JinjaValues.ToLong(a), JinjaValues.ToLong(b));
                    return Math.Pow(JinjaValues.ToDouble(a), JinjaValues.ToDouble(b));
                }
                break;
        }
        throw fail($"unsupported operand types for '{op}': {JinjaValues.TypeName(a)} and {JinjaValues.TypeName(b)}");
    }

    /// <summary>Python's <c>item in container</c>.</summary>
    public static bool Contains(object? container, object? item, int line, JinjaArguments? where = null)
    {
        switch (container)
        {
            case string s:
                if (item is string sub) return s.Contains(sub, StringComparison.Ordinal);
                throw Fail($"'in <string>' requires a string on the left, found {JinjaValues.TypeName(item)}");
            case List<object?> list: return list.Any(x => JinjaValues.Equal(x, item));
            case Dictionary<string, object?> dict: return item is string k && dict.ContainsKey(k);
            case Undefined: return false;
            default: throw Fail($"'in' needs a string, list or mapping on the right, found {JinjaValues.TypeName(container)}");
        }
        TemplateException Fail(string p) => where?.Fail(p) ?? new TemplateException("", line, p);
    }

    /// <summary><c>obj.name</c>: Python attributes first (a mapping's methods), then the mapping's key; missing is undefined.</summary>
    public static object? Attribute(object? obj, string name, Func<string, TemplateException> fail)
    {
        switch (obj)
        {
            case Undefined u:
                throw fail($"'{u.Name}' is undefined, so it has no attribute '{name}'");
            case LoopInfo loop:
                return loop.Get(name);
            case Namespace ns:
                return ns.TryGetValue(name, out var nv) ? nv : new Undefined(name);
            case Dictionary<string, object?> dict:
                if (JinjaMethods.Bind(obj, name) is Callable dm) return dm;
                return dict.TryGetValue(name, out var v) ? v : new Undefined(name);
            default:
                return (object?)JinjaMethods.Bind(obj, name) ?? new Undefined(name);
        }
    }

    /// <summary><c>obj[key]</c>: a mapping's key, a list or string index (negative from the end); missing is undefined.</summary>
    public static object? Item(object? obj, object? key, Func<string, TemplateException> fail)
    {
        switch (obj)
        {
            case Undefined u:
                throw fail($"'{u.Name}' is undefined, so it has no item {JinjaValues.Repr(key)}");
            case Namespace ns when key is string a:
                return ns.TryGetValue(a, out var nv) ? nv : new Undefined(a);
            case Dictionary<string, object?> dict:
                if (key is string k) return dict.TryGetValue(k, out var v) ? v : (object?)JinjaMethods.Bind(obj, k) ?? new Undefined(k);
                return new Undefined(JinjaValues.Repr(key));
            case List<object?> list when key is long or bool:
            {
                long i = JinjaValues.ToLong(key);
                if (i < 0) i += list.Count;
                return i >= 0 && i < list.Count ? list[(int)i] : new Undefined($"[{JinjaValues.ToLong(key)}]");
            }
            case string s when key is long or bool:
            {
                var chars = JinjaValues.TextElements(s).ToList();
                long i = JinjaValues.ToLong(key);
                if (i < 0) i += chars.Count;
                return i >= 0 && i < chars.Count ? chars[(int)i] : new Undefined($"[{JinjaValues.ToLong(key)}]");
            }
            case LoopInfo loop when key is string name:
                return loop.Get(name);
            default:
                return key is string attr ? Attribute(obj, attr, fail) : new Undefined(JinjaValues.Repr(key));
        }
    }

    /// <summary>Python slicing <c>obj[start:stop:step]</c> of a list or string.</summary>
    public static object? Slice(object? obj, object? start, object? stop, object? step, Func<string, TemplateException> fail)
    {
        List<object?> items = obj switch
        {
            List<object?> l => l,
            string s => [.. JinjaValues.TextElements(s)],
            _ => throw fail($"cannot slice {JinjaValues.TypeName(obj)}"),
        };
        long Bound(object? v, string what) => v is long or bool ? JinjaValues.ToLong(v) : throw fail($"slice {what} must be an integer, found {JinjaValues.TypeName(v)}");
        long n = items.Count;
        long st = step is null ? 1 : Bound(step, "step");
        if (st == 0) throw fail("slice step cannot be zero");
        long lo, hi;
        if (st > 0)
        {
            lo = start is null ? 0 : Clamp(Bound(start, "start"), n, 0, n);
            hi = stop is null ? n : Clamp(Bound(stop, "stop"), n, 0, n);
        }
        else
        {
            lo = start is null ? n - 1 : Clamp(Bound(start, "start"), n, -1, n - 1);
            hi = stop is null ? -1 : Clamp(Bound(stop, "stop"), n, -1, n - 1);
        }
        var result = new List<object?>();
        for (long i = lo; st > 0 ? i < hi : i > hi; i += st) result.Add(items[(int)i]);
        return obj is string ? string.Concat(result.Cast<string>()) : result;

        static long Clamp(long v, long n, long min, long max)
        {
            if (v < 0) v += n;
            return Math.Clamp(v, min, max);
        }
    }
}
