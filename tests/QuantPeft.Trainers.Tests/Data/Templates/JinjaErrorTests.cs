using QuantPeft.Formats;
using QuantPeft.Trainers.Data.Templates;

namespace QuantPeft.Trainers.Tests.Data.Templates;

/// <summary>What cannot be rendered exactly is an error naming the template, its line and the construct.</summary>
public class JinjaErrorTests
{
    [Theory]
    [InlineData("a\nb\n{% include 'x.jinja' %}", 3, "unsupported statement '{% include %}'")]
    [InlineData("{{ x }}\n{{ x | wordwrap(3) }}", 2, "unsupported filter '| wordwrap'")]
    [InlineData("\n\n\n{% if x is escaped %}{% endif %}", 4, "unsupported test 'is escaped'")]
    [InlineData("{% for x in y recursive %}{% endfor %}", 1, "unsupported construct 'recursive' loops")]
    [InlineData("{% if x %}\nno end", 1, "'{% if %}' of line 1 is never closed")]
    [InlineData("{{ 'open }}", 1, "string literal is never closed")]
    [InlineData("line\n{# never closed", 2, "comment '{#' is never closed")]
    [InlineData("{% endfor %}", 1, "'{% endfor %}' without an opening statement")]
    public void ParseErrorsNameTheLineAndConstruct(string source, int line, string problem)
    {
        var e = Assert.Throws<TemplateException>(() => JinjaTemplate.Parse(source, "models/x/chat_template.jinja"));
        Assert.IsAssignableFrom<QuantPeftException>(e);
        Assert.Equal(line, e.Line);
        Assert.StartsWith(problem, e.Problem);
        Assert.StartsWith($"chat template 'models/x/chat_template.jinja' line {line}: ", e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Theory]
    [InlineData("{{ messages[0].role.missing.deeper }}", "'missing' is undefined, so it has no attribute 'deeper'")]
    [InlineData("{{ 1 + 'a' }}", "unsupported operand types for '+': an integer and a string")]
    [InlineData("{{ lipsum() }}", "unsupported function or undefined name 'lipsum'")]
    [InlineData("{{ messages.append(1) }}", "method 'append': modifies a list")]
    [InlineData("{{ 1 < 'a' }}", "cannot compare an integer and a string with '<'")]
    [InlineData("{{ raise_exception('roles must alternate') }}", "the template raised: roles must alternate")]
    public void RenderErrorsNameTheLine(string body, string problem)
    {
        var t = JinjaTemplate.Parse("first line\n" + body, "t.jinja");
        var vars = new Dictionary<string, object?> { ["messages"] = new List<object?> { new Dictionary<string, object?> { ["role"] = "user" } } };
        var e = Assert.Throws<TemplateException>(() => t.Render(vars));
        Assert.Equal(2, e.Line);
        Assert.StartsWith(problem, e.Problem);
        Assert.Equal(problem.StartsWith("the template raised", StringComparison.Ordinal), e.Raised);
    }
}
