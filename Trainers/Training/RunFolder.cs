using System.Globalization;

namespace QuantPeft.Trainers.Training;

/// <summary>
/// The folder one training run writes into, and the names of everything in it (see docs/run-folder.md):
/// <c>plan.json</c>, <c>metrics.jsonl</c>, <c>adapter/</c>, <c>loss.png</c>, <c>report.md</c>.
/// The default location is <c>runs/&lt;UTC timestamp&gt;</c>, e.g. <c>runs/2026-11-23T09-30-05Z</c>
/// (dashes instead of colons so the name is valid on every file system, and it sorts by time).
/// </summary>
public sealed class RunFolder
{
    /// <summary>Parent folder of timestamped runs.</summary>
    public const string DefaultParent = "runs";

    private RunFolder(string root) => Root = root;

    /// <summary>The run folder.</summary>
    public string Root { get; }

    /// <summary>The memory plan the run executed (<c>plan.json</c>).</summary>
    public string PlanJson => Path.Combine(Root, "plan.json");

    /// <summary>Per-step metrics (<c>metrics.jsonl</c>, see <see cref="MetricsWriter"/>).</summary>
    public string MetricsJsonl => Path.Combine(Root, "metrics.jsonl");

    /// <summary>The trained adapter in PEFT layout (<c>adapter/adapter_config.json</c>, <c>adapter/adapter_model.safetensors</c>).</summary>
    public string AdapterDirectory => Path.Combine(Root, "adapter");

    /// <summary>Train and eval loss curves (<c>loss.png</c>).</summary>
    public string LossPng => Path.Combine(Root, "loss.png");

    /// <summary>The human-readable report: predicted vs measured peak, losses, settings (<c>report.md</c>).</summary>
    public string ReportMd => Path.Combine(Root, "report.md");

    /// <summary>The folder name for a run started at <paramref name="utc"/>: <c>yyyy-MM-ddTHH-mm-ssZ</c>.</summary>
    public static string TimestampName(DateTime utc) =>
        utc.ToUniversalTime().ToString("yyyy-MM-dd'T'HH-mm-ss'Z'", CultureInfo.InvariantCulture);

    /// <summary>
    /// Creates <c>&lt;parent&gt;/&lt;timestamp&gt;</c> (parent <see cref="DefaultParent"/> when null), adding
    /// <c>-2</c>, <c>-3</c>, ... if a run already started in the same second.
    /// </summary>
    public static RunFolder CreateTimestamped(string? parent = null, DateTime? utcNow = null)
    {
        string baseName = Path.Combine(parent ?? DefaultParent, TimestampName(utcNow ?? DateTime.UtcNow));
        string path = baseName;
        for (int n = 2; Directory.Exists(path) || File.Exists(path); n++) path = $"{baseName}-{n}";
        return Create(path);
    }

    /// <summary>Uses <paramref name="path"/> as the run folder, creating it; it must not already hold a run's metrics.</summary>
    /// <exception cref="TrainingOptionsException">The folder already contains <c>metrics.jsonl</c> (a previous run), or the path is a file.</exception>
    public static RunFolder Create(string path)
    {
        if (File.Exists(path))
            throw new TrainingOptionsException($"run folder '{path}' is a file; give a folder path");
        var run = new RunFolder(Path.GetFullPath(path));
        if (File.Exists(run.MetricsJsonl))
            throw new TrainingOptionsException($"run folder '{path}' already holds a run (metrics.jsonl exists); choose a new folder");
        Directory.CreateDirectory(run.AdapterDirectory);
        return run;
    }
}
