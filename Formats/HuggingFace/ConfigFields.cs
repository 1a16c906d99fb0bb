using System.Globalization;
using System.Text.Json;

namespace QuantPeft.Formats.HuggingFace;

/// <summary>
/// Typed access to the fields of one JSON object in a config file. Every failure becomes a
/// <see cref="ModelConfigException"/> naming the file and the dotted field, so the parsing code
/// above it reads as a list of fields and their defaults.
/// </summary>
/// <remarks>
/// A field set to JSON <c>null</c> counts as absent, as it does for transformers (Python <c>None</c>
/// selects the default).
/// </remarks>
internal sealed class ConfigFields(JsonElement obj, string source, string prefix = "")
{
    public string Source { get; } = source;

    public string FieldName(string name) => prefix + name;

    public bool Has(string name) => obj.TryGetProperty(name, out var v) && v.ValueKind != JsonValueKind.Null;

    /// <summary>Whether the field is present with the value JSON null (some defaults differ from "absent").</summary>
    public bool IsExplicitNull(string name) => obj.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Null;

    public ModelConfigException Error(string name, string problem) => new(Source, FieldName(name), problem);

    public int RequiredPositiveInt(string name) =>
        OptionalPositiveInt(name) ?? throw Error(name, "is required (a positive integer) but is missing");

    public int? OptionalPositiveInt(string name)
    {
        int? value = OptionalInt(name);
        if (value is <= 0)
            throw Error(name, $"must be a positive integer, found {value}");
        return value;
    }

    public int? OptionalInt(string name)
    {
        if (!TryGet(name, out var v))
            return null;
        if (v.ValueKind != JsonValueKind.Number || !v.TryGetInt32(out int value))
            throw Error(name, $"must be an integer, found {Describe(v)}");
        return value;
    }

    public double? OptionalPositiveDouble(string name)
    {
        if (!TryGet(name, out var v))
            return null;
        if (v.ValueKind != JsonValueKind.Number || !v.TryGetDouble(out double value) || !double.IsFinite(value))
            throw Error(name, $"must be a number, found {Describe(v)}");
        if (value <= 0)
            throw Error(name, $"must be positive, found {v.GetRawText()}");
        return value;
    }

    public double RequiredPositiveDouble(string name) =>
        OptionalPositiveDouble(name) ?? throw Error(name, "is required (a positive number) but is missing");

    public bool? OptionalBool(string name)
    {
        if (!TryGet(name, out var v))
            return null;
        return v.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw Error(name, $"must be true or false, found {Describe(v)}"),
        };
    }

    public string? OptionalString(string name)
    {
        if (!TryGet(name, out var v))
            return null;
        if (v.ValueKind != JsonValueKind.String)
            throw Error(name, $"must be a string, found {Describe(v)}");
        return v.GetString()!;
    }

    /// <summary>The array of strings <paramref name="name"/>, or null when absent or JSON null.</summary>
    public string[]? OptionalStringArray(string name)
    {
        if (!TryGet(name, out var v))
            return null;
        if (v.ValueKind != JsonValueKind.Array)
            throw Error(name, $"must be an array of strings, found {Describe(v)}");
        var items = new string[v.GetArrayLength()];
        int i = 0;
        foreach (var item in v.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.String)
                throw Error($"{name}[{i}]", $"must be a string, found {Describe(item)}");
            items[i++] = item.GetString()!;
        }
        return items;
    }

    /// <summary>The array of positive numbers <paramref name="name"/>, or null when absent or JSON null.</summary>
    public double[]? OptionalPositiveDoubleArray(string name)
    {
        if (!TryGet(name, out var v))
            return null;
        if (v.ValueKind != JsonValueKind.Array)
            throw Error(name, $"must be an array of numbers, found {Describe(v)}");
        var items = new double[v.GetArrayLength()];
        int i = 0;
        foreach (var item in v.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.Number || !item.TryGetDouble(out double value) || !double.IsFinite(value) || value <= 0)
                throw Error($"{name}[{i}]", $"must be a positive number, found {Describe(item)}");
            items[i++] = value;
        }
        return items;
    }

    /// <summary>A positive number, JSON null meaning "off" (null), absence meaning <paramref name="absent"/>.</summary>
    public double? OptionalPositiveDoubleOrNull(string name, double? absent) =>
        IsExplicitNull(name) ? null : OptionalPositiveDouble(name) ?? absent;

    /// <summary>The nested object <paramref name="name"/>, or null when absent or JSON null.</summary>
    public ConfigFields? OptionalObject(string name)
    {
        if (!TryGet(name, out var v))
            return null;
        if (v.ValueKind != JsonValueKind.Object)
            throw Error(name, $"must be an object, found {Describe(v)}");
        return new ConfigFields(v, Source, FieldName(name) + ".");
    }

    private bool TryGet(string name, out JsonElement value) =>
        obj.TryGetProperty(name, out value) && value.ValueKind != JsonValueKind.Null;

    /// <summary>A short rendering of a JSON value for messages: its kind and, for scalars, its text.</summary>
    public static string Describe(JsonElement v) => v.ValueKind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        JsonValueKind.String => "the string " + Clip(v.GetRawText()),
        JsonValueKind.Number => "the number " + Clip(v.GetRawText()),
        JsonValueKind.True or JsonValueKind.False => v.GetRawText(),
        JsonValueKind.Null => "null",
        _ => v.ValueKind.ToString().ToLower(CultureInfo.InvariantCulture),
    };

    private static string Clip(string s) => s.Length <= 40 ? s : s[..40] + "...";
}
