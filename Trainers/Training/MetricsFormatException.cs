using QuantPeft.Formats;

namespace QuantPeft.Trainers.Training;

/// <summary>A <c>metrics.jsonl</c> file is missing or has a line that is not a metrics object; the message names the file and line.</summary>
public sealed class MetricsFormatException : QuantPeftException
{
    /// <summary>Creates the exception for <paramref name="path"/>; <paramref name="line"/> is 1-based, 0 for the whole file.</summary>
    public MetricsFormatException(string path, int line, string problem)
        : base(Describe(path, line, problem))
    {
        FilePath = path;
        Line = line;
    }

    /// <summary>Same, with the parse error that caused it.</summary>
    public MetricsFormatException(string path, int line, string problem, Exception inner)
        : base(Describe(path, line, problem), inner)
    {
        FilePath = path;
        Line = line;
    }

    /// <summary>The file at fault.</summary>
    public string FilePath { get; }

    /// <summary>1-based line number, 0 for a whole-file problem.</summary>
    public int Line { get; }

    private static string Describe(string path, int line, string problem) =>
        line > 0 ? $"metrics file '{path}': line {line}: {problem}" : $"metrics file '{path}': {problem}";
}
