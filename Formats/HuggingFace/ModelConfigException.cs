namespace QuantPeft.Formats.HuggingFace;

/// <summary>
/// A Hugging Face <c>config.json</c> that cannot describe a supported model: the file is missing or
/// is not JSON, a field is missing or of the wrong type, or the numbers contradict each other.
/// The message names the file and the field, what was expected and what was found.
/// </summary>
public sealed class ModelConfigException : QuantPeftException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="source">The config file (or the name given to JSON text) at fault.</param>
    /// <param name="field">The JSON field at fault, dotted for nested fields (<c>rope_scaling.factor</c>); null when the whole file is at fault.</param>
    /// <param name="problem">What is wrong: what was expected and what was found.</param>
    /// <param name="inner">The error that revealed the problem, if any.</param>
    public ModelConfigException(string source, string? field, string problem, Exception? inner = null)
        : base(Format(source, field, problem), inner!)
    {
        ConfigSource = source;
        Field = field;
    }

    /// <summary>The config file (or the name given to JSON text) at fault.</summary>
    public string ConfigSource { get; }

    /// <summary>The JSON field at fault, or null when the whole file is at fault.</summary>
    public string? Field { get; }

    private static string Format(string source, string? field, string problem) =>
        field is null ? $"'{source}': {problem}" : $"'{source}': field '{field}': {problem}";
}
