using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace QuantPeft.Memory.Reports.Handoff;

/// <summary>One key of a YAML mapping: a scalar (bool, int, long, double, string), a list of strings or a nested mapping.</summary>
/// <param name="Key">The key.</param>
/// <param name="Value">bool, int, long, double, string, <see cref="IReadOnlyList{T}"/> of string, or <see cref="IReadOnlyList{T}"/> of <see cref="YamlEntry"/>.</param>
public sealed record YamlEntry(string Key, object Value);

/// <summary>
/// Writes the block-style YAML subset the engines' configs use: mappings, lists of strings and plain scalars. Strings
/// that a YAML 1.1 or 1.2 reader could take for another type (true, no, null, numbers) or that hold special characters
/// are double-quoted; numbers never use exponents, which YAML 1.1 readers (PyYAML) would read as strings.
/// </summary>
public static partial class YamlText
{
    /// <summary>Renders <paramref name="entries"/> after the comment lines of <paramref name="header"/>.</summary>
    public static string Write(IReadOnlyList<YamlEntry> entries, IEnumerable<string>? header = null)
    {
        var sb = new StringBuilder();
        foreach (string line in header ?? []) sb.Append("# ").Append(line).Append('\n');
        Append(sb, entries, 0);
        return sb.ToString();
    }

    private static void Append(StringBuilder sb, IReadOnlyList<YamlEntry> entries, int indent)
    {
        string pad = new(' ', indent);
        foreach (YamlEntry e in entries)
        {
            sb.Append(pad).Append(e.Key).Append(':');
            switch (e.Value)
            {
                case IReadOnlyList<YamlEntry> map:
                    sb.Append('\n');
                    Append(sb, map, indent + 2);
                    break;
                case IReadOnlyList<string> list:
                    sb.Append('\n');
                    foreach (string item in list) sb.Append(pad).Append("  - ").Append(Scalar(item)).Append('\n');
                    break;
                default:
                    sb.Append(' ').Append(Scalar(e.Value)).Append('\n');
                    break;
            }
        }
    }

    /// <summary>One scalar in YAML spelling.</summary>
    public static string Scalar(object value) => value switch
    {
        bool b => b ? "true" : "false",
        int i => i.ToString(CultureInfo.InvariantCulture),
        long l => l.ToString(CultureInfo.InvariantCulture),
        double d => Number(d),
        string s => Plain().IsMatch(s) && !Reserved.Contains(s) ? s : Quote(s),
        _ => throw new ArgumentException($"unsupported YAML value {value.GetType().Name}", nameof(value)),
    };

    private static string Number(double d)
    {
        if (!double.IsFinite(d)) throw new ArgumentException("YAML numbers must be finite", nameof(d));
        string s = d.ToString("0.0###############", CultureInfo.InvariantCulture);
        return s;
    }

    private static string Quote(string s) => "\"" + s.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal) + "\"";

    // Words YAML 1.1 reads as booleans or null.
    private static readonly HashSet<string> Reserved = new(StringComparer.OrdinalIgnoreCase)
    {
        "true", "false", "yes", "no", "on", "off", "y", "n", "null", "~",
    };

    // A plain scalar that starts with a letter or one of _ . / and holds no YAML indicator.
    [GeneratedRegex(@"^[A-Za-z_./][A-Za-z0-9_./-]*$")]
    private static partial Regex Plain();
}
