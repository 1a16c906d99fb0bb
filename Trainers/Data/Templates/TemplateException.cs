using QuantPeft.Formats;

namespace QuantPeft.Trainers.Data.Templates;

/// <summary>
/// A chat template cannot be parsed, uses a construct QuantPeft does not implement, fails while rendering, or
/// raises (<c>raise_exception</c>). The message names the template's source, its line and the construct; the
/// CLI exits with code 1. Nothing is rendered in part: a template QuantPeft cannot run exactly is an error.
/// </summary>
public sealed class TemplateException : QuantPeftException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="source">Where the template came from (a file, or <c>tokenizer_config.json</c> of a folder).</param>
    /// <param name="line">1-based line of the template.</param>
    /// <param name="problem">What is wrong, naming the construct.</param>
    /// <param name="raised">Whether the template itself raised (<c>raise_exception</c>) rather than failed.</param>
    public TemplateException(string source, int line, string problem, bool raised = false)
        : base($"chat template '{source}' line {line}: {OneLine(problem)}")
    {
        TemplateName = source;
        Line = line;
        Problem = OneLine(problem);
        Raised = raised;
    }

    // A problem may quote template text; the message stays on one line.
    private static string OneLine(string s) => s.Replace("\r", "\\r", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal);

    /// <summary>Where the template came from.</summary>
    public string TemplateName { get; }

    /// <summary>1-based line of the template.</summary>
    public int Line { get; }

    /// <summary>What is wrong, without the location.</summary>
    public string Problem { get; }

    /// <summary>True when the template called <c>raise_exception</c> (a record it refuses), false for a template fault.</summary>
    public bool Raised { get; }
}
