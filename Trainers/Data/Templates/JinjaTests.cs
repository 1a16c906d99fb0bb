namespace QuantPeft.Trainers.Data.Templates;

/// <summary>The tests of <c>x is name</c> that QuantPeft implements, with Jinja's meanings.</summary>
internal static class JinjaTests
{
    private static readonly HashSet<string> Names =
    [
        "defined", "undefined", "none", "string", "number", "integer", "float", "mapping", "iterable", "sequence", "boolean",
        "true", "false", "callable", "eq", "equalto", "==", "ne", "!=", "lt", "lessthan", "<", "le", "<=", "gt", "greaterthan", ">",
        "ge", ">=", "odd", "even", "divisibleby", "in", "lower", "upper", "sameas",
    ];

    /// <summary>Fails at parse time on a test QuantPeft does not implement.</summary>
    public static void Check(string name, string source, int line)
    {
        if (!Names.Contains(name)) throw new TemplateException(source, line, $"unsupported test 'is {name}'");
    }

    public static bool Apply(string name, object? v, JinjaArguments a)
    {
        object? Arg() => a.Count > 0 ? a.Get(0, "value") : throw a.Fail("needs an argument");
        switch (name)
        {
            case "defined": return v is not Undefined;
            case "undefined": return v is Undefined;
            case "none": return v is null;
            case "string": return v is string;
            case "number": return v is long or double or bool;
            case "integer": return v is long;
            case "float": return v is double;
            case "boolean": return v is bool;
            case "true": return v is true;
            case "false": return v is false;
            case "mapping": return v is Dictionary<string, object?> and not Namespace;
            case "iterable": return v is string or List<object?> or Dictionary<string, object?> or Undefined;
            case "sequence": return v is string or List<object?> or Dictionary<string, object?>;
            case "callable": return v is Callable;
            case "eq" or "equalto" or "==": return JinjaValues.Equal(v, Arg());
            case "ne" or "!=": return !JinjaValues.Equal(v, Arg());
            case "lt" or "lessthan" or "<": return Order(v, Arg(), a) < 0;
            case "le" or "<=": return Order(v, Arg(), a) <= 0;
            case "gt" or "greaterthan" or ">": return Order(v, Arg(), a) > 0;
            case "ge" or ">=": return Order(v, Arg(), a) >= 0;
            case "odd": return Integer(v, a) % 2 != 0;
            case "even": return Integer(v, a) % 2 == 0;
            case "divisibleby": return Integer(v, a) % Integer(Arg(), a) == 0;
            case "in": return JinjaOperators.Contains(Arg(), v, a.Line, a);
            case "lower": return v is string s && s == s.ToLowerInvariant();
            case "upper": return v is string u && u == u.ToUpperInvariant();
            case "sameas": return v is null || v is bool ? Equals(v, Arg()) : ReferenceEquals(v, Arg());
            default: throw a.Fail("unsupported test");
        }
    }

    private static int Order(object? x, object? y, JinjaArguments a) =>
        JinjaValues.Compare(x, y) ?? throw a.Fail($"cannot order {JinjaValues.TypeName(x)} and {JinjaValues.TypeName(y)}");

    private static long Integer(object? v, JinjaArguments a) => v is long or bool ? JinjaValues.ToLong(v) : throw a.Fail($"expected an integer, found {JinjaValues.TypeName(v)}");
}
