namespace QuantPeft.Trainers.Data.Templates;

/// <summary>Evaluated arguments of a filter, test, method or global, read the way Python binds them (position or keyword).</summary>
internal sealed class JinjaArguments(List<object?> positional, Dictionary<string, object?> keywords, string what, string source, int line)
{
    public List<object?> Positional { get; } = positional;

    public Dictionary<string, object?> Keywords { get; } = keywords;

    public int Line { get; } = line;

    public int Count => Positional.Count + Keywords.Count;

    /// <summary>The argument at <paramref name="index"/> or named <paramref name="name"/>, else <paramref name="fallback"/>.</summary>
    public object? Get(int index, string name, object? fallback = null) =>
        index < Positional.Count ? Positional[index] : Keywords.TryGetValue(name, out var v) ? v : fallback;

    public bool Has(int index, string name) => index < Positional.Count || Keywords.ContainsKey(name);

    public string String(int index, string name, string? fallback = null) => Get(index, name, fallback) switch
    {
        string s => s,
        null when fallback is not null => fallback,
        var v => throw Fail($"argument '{name}' must be a string, found {JinjaValues.TypeName(v)}"),
    };

    public long Integer(int index, string name, long fallback) => Get(index, name, fallback) switch
    {
        long l => l,
        bool b => b ? 1 : 0,
        var v => throw Fail($"argument '{name}' must be an integer, found {JinjaValues.TypeName(v)}"),
    };

    /// <summary>Fails when more arguments were given than <paramref name="names"/> allows, or unknown keywords.</summary>
    public JinjaArguments Allow(params string[] names)
    {
        if (Positional.Count > names.Length) throw Fail($"takes at most {names.Length} argument(s), {Positional.Count} given");
        foreach (string k in Keywords.Keys)
            if (!names.Contains(k)) throw Fail($"has no argument '{k}'");
        return this;
    }

    public TemplateException Fail(string problem) => new(source, Line, $"{what}: {problem}");
}
