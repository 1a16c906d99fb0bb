using System.Text.Json;
using System.Text.RegularExpressions;
using K = QuantPeft.Formats.Peft.PeftErrorKind;

namespace QuantPeft.Formats.Peft;

/// <summary>Typed access to config values with errors that name the file and key.</summary>
internal sealed class PeftConfigValueReader(string path)
{
    private PeftFormatException Bad(string key, string expected, JsonElement found) =>
        new(K.InvalidField, path, key, $"expected {expected}, found {Describe(found)}");

    private static string Describe(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.String => $"\"{e.GetString()}\"",
        JsonValueKind.Object or JsonValueKind.Array => e.ValueKind.ToString().ToLowerInvariant(),
        _ => e.GetRawText(),
    };

    public string? String(JsonElement e, string key, bool nullable = false) =>
        e.ValueKind == JsonValueKind.String ? e.GetString()
        : nullable && e.ValueKind == JsonValueKind.Null ? null
        : throw Bad(key, nullable ? "a string or null" : "a string", e);

    public string? OneOf(JsonElement e, string key, string[] allowed, bool nullable)
    {
        string? s = String(e, key, nullable);
        return s is null || allowed.Contains(s) ? s : throw Bad(key, "one of " + string.Join(", ", allowed.Select(a => $"\"{a}\"")), e);
    }

    public bool Bool(JsonElement e, string key) =>
        e.ValueKind is JsonValueKind.True or JsonValueKind.False ? e.GetBoolean() : throw Bad(key, "true or false", e);

    public int PositiveInt(JsonElement e, string key) =>
        e.ValueKind == JsonValueKind.Number && e.TryGetInt32(out int v) && v > 0 ? v : throw Bad(key, "a positive integer", e);

    public double Number(JsonElement e, string key) =>
        e.ValueKind == JsonValueKind.Number && e.TryGetDouble(out double v) && double.IsFinite(v) ? v : throw Bad(key, "a number", e);

    public double Probability(JsonElement e, string key)
    {
        double p = Number(e, key);
        return p is >= 0 and < 1 ? p : throw Bad(key, "a probability in [0, 1)", e);
    }

    public IReadOnlyList<string>? StringList(JsonElement e, string key) => e.ValueKind switch
    {
        JsonValueKind.Null => null,
        JsonValueKind.Array => e.EnumerateArray().Select(x => String(x, key)!).ToList(),
        _ => throw Bad(key, "a list of strings or null", e),
    };

    public IReadOnlyList<int>? IntList(JsonElement e, string key) => e.ValueKind switch
    {
        JsonValueKind.Null => null,
        JsonValueKind.Number => [NonNegativeInt(e, key)],
        JsonValueKind.Array => e.EnumerateArray().Select(x => NonNegativeInt(x, key)).ToList(),
        _ => throw Bad(key, "an integer, a list of integers, or null", e),
    };

    private int NonNegativeInt(JsonElement e, string key) =>
        e.ValueKind == JsonValueKind.Number && e.TryGetInt32(out int v) && v >= 0 ? v : throw Bad(key, "a non-negative integer", e);

    public PeftModuleSelector? Selector(JsonElement e, string key) => e.ValueKind switch
    {
        JsonValueKind.Null => null,
        JsonValueKind.String => PeftModuleSelector.FromPattern(e.GetString()!),
        JsonValueKind.Array => PeftModuleSelector.FromNames(e.EnumerateArray().Select(x => String(x, key)!)),
        _ => throw Bad(key, "a list of module names, a regex string, or null", e),
    };

    public PeftInitLoraWeights InitWeights(JsonElement e, string key) => e.ValueKind switch
    {
        JsonValueKind.True or JsonValueKind.False => PeftInitLoraWeights.FromFlag(e.GetBoolean()),
        JsonValueKind.String => PeftInitLoraWeights.FromMethod(e.GetString()!),
        _ => throw Bad(key, "true, false or a method name", e),
    };

    public IReadOnlyDictionary<string, T> Pattern<T>(JsonElement e, string key, Func<JsonElement, T> value)
    {
        if (e.ValueKind == JsonValueKind.Null)
            return new Dictionary<string, T>();
        if (e.ValueKind != JsonValueKind.Object)
            throw Bad(key, "an object of regex to value", e);
        var map = new Dictionary<string, T>(StringComparer.Ordinal);
        foreach (var p in e.EnumerateObject())
        {
            try
            {
                _ = new Regex(p.Name);
            }
            catch (ArgumentException ex)
            {
                throw new PeftFormatException(K.InvalidField, path, key, $"pattern '{p.Name}' is not a valid regex ({ex.Message})", ex);
            }
            map[p.Name] = value(p.Value);
        }
        return map;
    }
}
