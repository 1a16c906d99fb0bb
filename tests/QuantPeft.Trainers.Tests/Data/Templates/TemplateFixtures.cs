using System.Text.Json;
using QuantPeft.Trainers.Data.Templates;

namespace QuantPeft.Trainers.Tests.Data.Templates;

/// <summary>The real chat templates under tests/fixtures/chat-templates and the renderings jinja2 made of them.</summary>
internal static class TemplateFixtures
{
    public static string Folder { get; } = Find();

    public static DateTime Now { get; } = new(2024, 7, 26, 10, 0, 0);

    private static string Find()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "tests", "fixtures", "chat-templates");
            if (Directory.Exists(candidate)) return candidate;
        }
        throw new InvalidOperationException("tests/fixtures/chat-templates not found above " + AppContext.BaseDirectory);
    }

    public static IEnumerable<string> TemplateNames() =>
        Directory.GetFiles(Folder, "*.jinja").Select(Path.GetFileNameWithoutExtension).Order(StringComparer.Ordinal)!;

    public static JinjaTemplate Load(string name) =>
        JinjaTemplate.Parse(File.ReadAllText(Path.Combine(Folder, name + ".jinja")), name + ".jinja");

    /// <summary>Each case's template variables (messages, add_generation_prompt, tokens, tools …).</summary>
    public static IReadOnlyDictionary<string, Dictionary<string, object?>> Cases()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(Folder, "cases.json")));
        var shared = (Dictionary<string, object?>)JinjaJson.FromElement(doc.RootElement.GetProperty("variables"))!;
        var result = new Dictionary<string, Dictionary<string, object?>>();
        foreach (JsonProperty c in doc.RootElement.GetProperty("cases").EnumerateObject())
        {
            var vars = new Dictionary<string, object?>(shared);
            if (c.Value.TryGetProperty("variables", out JsonElement extra))
                foreach (var (k, v) in (Dictionary<string, object?>)JinjaJson.FromElement(extra)!) vars[k] = v;
            vars["messages"] = JinjaJson.FromElement(c.Value.GetProperty("messages"));
            vars["add_generation_prompt"] = c.Value.GetProperty("add_generation_prompt").GetBoolean();
            result[c.Name] = vars;
        }
        return result;
    }
}
