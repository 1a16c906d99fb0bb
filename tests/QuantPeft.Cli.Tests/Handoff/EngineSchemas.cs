using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace QuantPeft.Cli.Tests.Handoff;

/// <summary>
/// The engines' documented configuration keys (tests/fixtures/engine-schemas, each file naming its source commit) and
/// checks of a written value against a documented type. YAML scalars are typed as a YAML 1.1 reader (PyYAML, which the
/// engines use) types them: true/false/yes/no/on/off are booleans, digits are integers, a number with a dot a float.
/// </summary>
internal static partial class EngineSchemas
{
    public static JsonElement Axolotl => Load("axolotl-schema.json");
    public static JsonElement Accelerate => Load("accelerate-config.json");
    public static JsonElement Transformers => Load("transformers-training.json");

    private static JsonElement Load(string name)
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "tests", "fixtures", "engine-schemas", name);
            if (File.Exists(candidate)) return JsonDocument.Parse(File.ReadAllText(candidate)).RootElement.Clone();
        }
        throw new InvalidOperationException($"tests/fixtures/engine-schemas/{name} not found above {AppContext.BaseDirectory}");
    }

    public static YamlMappingNode ReadYaml(string path)
    {
        var stream = new YamlStream();
        using var reader = new StringReader(File.ReadAllText(path));
        stream.Load(reader);
        return (YamlMappingNode)stream.Documents.Single().RootNode;
    }

    /// <summary>What a YAML 1.1 reader makes of a scalar: bool, int, float, null or str.</summary>
    public static string ScalarType(YamlScalarNode s)
    {
        if (s.Style is ScalarStyle.DoubleQuoted or ScalarStyle.SingleQuoted) return "str";
        string v = s.Value ?? "";
        if (v is "" or "~" || v.Equals("null", StringComparison.OrdinalIgnoreCase)) return "null";
        if (Regex.IsMatch(v, "^(true|false|yes|no|on|off|y|n)$", RegexOptions.IgnoreCase)) return "bool";
        if (Regex.IsMatch(v, "^[-+]?[0-9]+$")) return "int";
        if (Regex.IsMatch(v, @"^[-+]?([0-9]*\.[0-9]+|[0-9]+\.[0-9]*)([eE][-+][0-9]+)?$")) return "float";
        return "str";
    }

    /// <summary>
    /// Whether <paramref name="node"/> has the type of the Python annotation <paramref name="annotation"/> (axolotl's
    /// pydantic schema): unions, None, bool, int, float, str, list[str], dict[...], Literal[...], and the nested FSDPConfig.
    /// An annotation this reader does not know fails the check, so a new key cannot pass unexamined.
    /// </summary>
    public static bool MatchesPython(string annotation, YamlNode node, out string why)
    {
        why = "";
        foreach (string alt in SplitUnion(annotation))
            if (MatchesOne(alt, node)) return true;
        why = $"value {Describe(node)} is not {annotation}";
        return false;
    }

    private static bool MatchesOne(string t, YamlNode node)
    {
        t = t.Trim();
        if (t.StartsWith('(') && t.EndsWith(')')) return SplitUnion(t[1..^1]).Any(a => MatchesOne(a, node));
        if (t.StartsWith("Literal[", StringComparison.Ordinal))
            return node is YamlScalarNode s && ScalarType(s) == "str" && LiteralValues(t).Contains(s.Value!);
        if (t.StartsWith("list[", StringComparison.Ordinal))
            return node is YamlSequenceNode seq && seq.Children.All(c => MatchesOne(t[5..^1], c));
        if (t.StartsWith("dict[", StringComparison.Ordinal) || t == "FSDPConfig") return node is YamlMappingNode;
        if (node is not YamlScalarNode scalar) return false;
        string type = ScalarType(scalar);
        return t switch
        {
            "None" => type == "null",
            "bool" => type == "bool",
            "int" => type == "int",
            "float" => type is "float" or "int",
            "str" => type == "str",
            _ => false,
        };
    }

    /// <summary>The quoted values of a <c>Literal["a", "b"]</c> annotation.</summary>
    public static IReadOnlyList<string> LiteralValues(string literal) =>
        QuotedValue().Matches(literal).Select(m => m.Groups[1].Value).ToList();

    /// <summary>Whether a YAML or JSON value has the type the hand-transcribed fixtures give (a type name, an enum name, or a list of allowed values).</summary>
    public static bool MatchesListed(JsonElement type, JsonElement enums, YamlNode node)
    {
        if (type.ValueKind == JsonValueKind.Array)
            return node is YamlScalarNode s && type.EnumerateArray().Any(v => v.ToString() == s.Value && (v.ValueKind == JsonValueKind.Number ? ScalarType(s) == "int" : ScalarType(s) == "str"));
        string t = type.GetString()!;
        if (enums.ValueKind == JsonValueKind.Object && enums.TryGetProperty(t, out JsonElement allowed))
            return node is YamlScalarNode e && ScalarType(e) == "str" && allowed.EnumerateArray().Any(v => v.GetString() == e.Value);
        return MatchesOne(t == "dict" ? "dict[str, Any]" : t, node);
    }

    /// <summary>The same for a JSON value.</summary>
    public static bool MatchesListed(JsonElement type, JsonElement value, IReadOnlyList<string>? optimizerNames = null)
    {
        if (type.ValueKind == JsonValueKind.Array)
            return type.EnumerateArray().Any(v => v.ToString() == value.ToString() && v.ValueKind == value.ValueKind);
        string t = type.GetString()!;
        return t switch
        {
            "str" => value.ValueKind == JsonValueKind.String,
            "int" => value.ValueKind == JsonValueKind.Number && value.TryGetInt64(out _),
            "float" => value.ValueKind == JsonValueKind.Number,
            "bool" => value.ValueKind is JsonValueKind.True or JsonValueKind.False,
            "dict" => value.ValueKind == JsonValueKind.Object,
            "list[str]" => value.ValueKind == JsonValueKind.Array && value.EnumerateArray().All(v => v.ValueKind == JsonValueKind.String),
            "str | list[str]" => value.ValueKind == JsonValueKind.String
                || (value.ValueKind == JsonValueKind.Array && value.EnumerateArray().All(v => v.ValueKind == JsonValueKind.String)),
            "OptimizerNames" => value.ValueKind == JsonValueKind.String && optimizerNames is not null && optimizerNames.Contains(value.GetString()!),
            _ => false,
        };
    }

    private static IEnumerable<string> SplitUnion(string annotation)
    {
        int depth = 0, start = 0;
        for (int i = 0; i < annotation.Length; i++)
        {
            char c = annotation[i];
            if (c is '[' or '(') depth++;
            else if (c is ']' or ')') depth--;
            else if (c == '|' && depth == 0)
            {
                yield return annotation[start..i].Trim();
                start = i + 1;
            }
        }
        yield return annotation[start..].Trim();
    }

    private static string Describe(YamlNode node) => node switch
    {
        YamlScalarNode s => $"'{s.Value}' ({ScalarType(s)})",
        YamlSequenceNode => "a list",
        _ => "a mapping",
    };

    [GeneratedRegex("\"([^\"]*)\"")]
    private static partial Regex QuotedValue();
}
