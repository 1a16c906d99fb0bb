namespace QuantPeft.Trainers.Data.Templates;

/// <summary>
/// A parsed Jinja template, rendered as Hugging Face <c>transformers</c> renders chat templates (trim_blocks,
/// lstrip_blocks, its <c>tojson</c>, <c>raise_exception</c> and <c>strftime_now</c>, the loop controls).
/// Parsing checks every statement, filter and test, so an unsupported construct fails before anything renders.
/// </summary>
public sealed class JinjaTemplate
{
    private readonly IReadOnlyList<Node> _nodes;

    private JinjaTemplate(string source, string name, IReadOnlyList<Node> nodes)
    {
        Source = source;
        Name = name;
        _nodes = nodes;
    }

    /// <summary>The template text.</summary>
    public string Source { get; }

    /// <summary>Where it came from, named in errors.</summary>
    public string Name { get; }

    /// <summary>Parses <paramref name="source"/>.</summary>
    /// <param name="source">Jinja text.</param>
    /// <param name="name">Where it came from (a file path), named in errors.</param>
    /// <exception cref="TemplateException">Bad syntax or an unsupported construct; names the line.</exception>
    public static JinjaTemplate Parse(string source, string name) => new(source, name, JinjaParser.Parse(source, name));

    /// <summary>Renders with <paramref name="variables"/> (strings, <see cref="long"/>, <see cref="double"/>, <see cref="bool"/>, null,
    /// <c>List&lt;object?&gt;</c> and <c>Dictionary&lt;string, object?&gt;</c>, nested).</summary>
    /// <param name="variables">The template's variables.</param>
    /// <param name="now">The clock behind <c>strftime_now</c>; the local time when null.</param>
    /// <exception cref="TemplateException">The template raised or failed; names the line.</exception>
    public string Render(IReadOnlyDictionary<string, object?> variables, Func<DateTime>? now = null) =>
        new JinjaEvaluator(Name, now ?? (() => DateTime.Now)).Render(_nodes, variables);
}
