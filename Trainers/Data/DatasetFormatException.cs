using QuantPeft.Formats;

namespace QuantPeft.Trainers.Data;

/// <summary>One bad line of a dataset file.</summary>
/// <param name="Line">1-based line number.</param>
/// <param name="Problem">What is wrong, naming the field and what was found.</param>
public sealed record DatasetLineError(int Line, string Problem);

/// <summary>
/// A dataset file is missing or has bad lines. The message names the file and the first
/// <see cref="ReportedLines"/> bad lines with their numbers; <see cref="Errors"/> holds those lines and
/// <see cref="BadLineCount"/> how many there were in all.
/// </summary>
public sealed class DatasetFormatException : QuantPeftException
{
    /// <summary>How many bad lines the message lists before summarising the rest.</summary>
    public const int ReportedLines = 5;

    /// <summary>A problem with the file as a whole (missing, unreadable, empty).</summary>
    public DatasetFormatException(string path, string problem)
        : base($"dataset '{path}': {problem}")
    {
        FilePath = path;
        Errors = [];
    }

    /// <summary>Bad lines: <paramref name="errors"/> are the first few, <paramref name="badLineCount"/> the total.</summary>
    public DatasetFormatException(string path, IReadOnlyList<DatasetLineError> errors, int badLineCount)
        : base(Describe(path, errors, badLineCount))
    {
        FilePath = path;
        Errors = errors;
        BadLineCount = badLineCount;
    }

    /// <summary>The file at fault.</summary>
    public string FilePath { get; }

    /// <summary>The first bad lines (at most <see cref="ReportedLines"/>).</summary>
    public IReadOnlyList<DatasetLineError> Errors { get; }

    /// <summary>Number of bad lines in the file (0 for a whole-file problem).</summary>
    public int BadLineCount { get; }

    private static string Describe(string path, IReadOnlyList<DatasetLineError> errors, int total)
    {
        string lines = string.Join("; ", errors.Select(e => $"line {e.Line}: {e.Problem}"));
        string more = total > errors.Count ? $"; and {total - errors.Count} more bad line(s)" : "";
        return $"dataset '{path}': {total} bad line(s): {lines}{more}";
    }
}

/// <summary>Dataset options that contradict each other or the model (for example a sequence length beyond the model's limit).</summary>
public sealed class DatasetOptionsException(string message) : QuantPeftException(message);
