using System.Collections;
using System.Globalization;
using System.Reflection;
using System.Security.Cryptography;
using QuantPeft.Memory.Planning;

namespace QuantPeft.Trainers.Recipes;

/// <summary>
/// The options of a run that decide its trajectory, as strings by field, so a checkpoint can refuse to be resumed
/// by a run that would not continue the same training (another model, data, method, rank, batch, ...).
/// </summary>
/// <remarks>
/// Every property of <see cref="FinetuneOptions"/> is included unless it is listed in <see cref="Excluded"/>, so a
/// strategy knob added later is covered without touching this file. Excluded are the knobs that only say how long
/// to run, where to read and write, or how to compute the same numbers (checkpointing, attention kernel). The model
/// and the data enter by content, not path: the model as a SHA-256 of <c>config.json</c> plus the byte size of
/// every <c>.safetensors</c> file (hashing a 14 GB checkpoint would cost minutes), the training file as a SHA-256
/// of its bytes, so a run folder or data copy that moved still resumes.
/// </remarks>
public static class TrainingFingerprint
{
    private static readonly HashSet<string> Excluded =
    [
        nameof(FinetuneOptions.ModelFolder), nameof(FinetuneOptions.DataPath), nameof(FinetuneOptions.EvalPath),
        nameof(FinetuneOptions.Steps), nameof(FinetuneOptions.EvalEvery), nameof(FinetuneOptions.ExactMatchRecords),
        nameof(FinetuneOptions.SaveEvery), nameof(FinetuneOptions.ResumeFrom), nameof(FinetuneOptions.RunFolder),
        nameof(FinetuneOptions.Checkpointing), nameof(FinetuneOptions.Attention),
        // A checkpoint is device-free (safetensors on the host), so a run may resume on another device.
        nameof(FinetuneOptions.Device),
    ];

    // The CLI flag of each field, for messages; fields without one are named by property.
    private static readonly Dictionary<string, string> Flags = new()
    {
        ["model"] = "MODEL", ["data"] = "--data",
        [nameof(FinetuneOptions.EvalFraction)] = "eval split", [nameof(FinetuneOptions.Method)] = "--method",
        [nameof(FinetuneOptions.Weights)] = "--weights", [nameof(FinetuneOptions.LqLoraBits)] = "--weights lq-lora bits",
        [nameof(FinetuneOptions.DoubleQuant)] = "--double-quant", [nameof(FinetuneOptions.Rank)] = "--rank",
        [nameof(FinetuneOptions.Alpha)] = "--alpha", [nameof(FinetuneOptions.Targets)] = "--targets",
        [nameof(FinetuneOptions.Optimizer)] = "--optimizer", [nameof(FinetuneOptions.LearningRate)] = "--lr",
        [nameof(FinetuneOptions.MicroBatchSize)] = "--batch", [nameof(FinetuneOptions.SequenceLength)] = "--seq",
        [nameof(FinetuneOptions.GradientAccumulation)] = "--grad-accum", [nameof(FinetuneOptions.Seed)] = "--seed",
        [nameof(FinetuneOptions.Layerwise)] = "--layerwise", [nameof(FinetuneOptions.LisaLayers)] = "--lisa-layers",
        [nameof(FinetuneOptions.LisaInterval)] = "--lisa-interval", [nameof(FinetuneOptions.Prune)] = "--prune",
        [nameof(FinetuneOptions.PruneCriterion)] = "--prune-criterion",
        [nameof(FinetuneOptions.Preference)] = "--task and its settings",
    };

    /// <summary>The fingerprint of <paramref name="options"/>: field name → invariant string value, sorted by name.</summary>
    /// <exception cref="FileNotFoundException">The model's config or the training file is missing.</exception>
    public static SortedDictionary<string, string> Of(FinetuneOptions options)
    {
        var result = new SortedDictionary<string, string>(StringComparer.Ordinal)
        {
            ["model"] = ModelIdentity(options.ModelFolder),
            ["data"] = "sha256:" + Sha256(options.DataPath),
        };
        foreach (var property in typeof(FinetuneOptions).GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            if (Excluded.Contains(property.Name) || property.GetIndexParameters().Length > 0) continue;
            // SFT runs have no preference settings; leaving the field out keeps their fingerprints as they were.
            if (property.Name == nameof(FinetuneOptions.Preference) && options.Preference is null) continue;
            // A separate eval file takes nothing from the training file, whatever the fraction says.
            if (property.Name == nameof(FinetuneOptions.EvalFraction) && options.EvalPath is not null)
            {
                result[property.Name] = "eval file";
                continue;
            }
            result[property.Name] = Format(property.GetValue(options));
        }
        return result;
    }

    /// <summary>
    /// The first field where <paramref name="recorded"/> (from a checkpoint) and <paramref name="current"/> differ,
    /// as a sentence naming the flag and both values; null when they agree.
    /// </summary>
    public static string? FirstDifference(IReadOnlyDictionary<string, string> recorded, IReadOnlyDictionary<string, string> current)
    {
        foreach (var key in recorded.Keys.Union(current.Keys).Order(StringComparer.Ordinal))
        {
            string? was = recorded.TryGetValue(key, out var r) ? r : null;
            string? now = current.TryGetValue(key, out var c) ? c : null;
            if (was == now) continue;
            string name = Flags.TryGetValue(key, out var flag) ? $"{flag} ({key})" : key;
            return $"{name} differs: the checkpoint was written with {was ?? "no such field"}, this run has {now ?? "no such field"}";
        }
        return null;
    }

    private static string ModelIdentity(string folder)
    {
        string config = Path.Combine(folder, "config.json");
        long weightBytes = Directory.Exists(folder)
            ? Directory.EnumerateFiles(folder, "*.safetensors").Sum(f => new FileInfo(f).Length)
            : 0;
        return $"config sha256:{Sha256(config)}, {weightBytes} weight bytes";
    }

    private static string Sha256(string path)
    {
        using var stream = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }

    private static string Format(object? value) => value switch
    {
        null => "null",
        string s => s,
        // The optimizer's command-line name, as the fingerprint recorded it when the option was a string.
        OptimizerKind o => Knob.Name(o),
        double d => d.ToString("R", CultureInfo.InvariantCulture),
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        IEnumerable items => string.Join(",", items.Cast<object?>().Select(Format)),
        _ => value.ToString() ?? "",
    };
}
