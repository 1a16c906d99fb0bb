using System.Text.Json;

namespace QuantPeft.Trainers.Training;

/// <summary>The contents of a <c>metrics.jsonl</c>, read back for plots and reports.</summary>
/// <param name="Train">Training lines in file order.</param>
/// <param name="Eval">Evaluation lines in file order.</param>
public sealed record MetricsLog(IReadOnlyList<TrainMetrics> Train, IReadOnlyList<EvalMetrics> Eval)
{
    /// <summary>Reads <paramref name="path"/>; <c>null</c> numbers come back as NaN.</summary>
    /// <exception cref="MetricsFormatException">The file is missing or a line is not a metrics object (names file and line).</exception>
    public static MetricsLog Read(string path)
    {
        if (!File.Exists(path)) throw new MetricsFormatException(path, 0, "file does not exist");
        var train = new List<TrainMetrics>();
        var eval = new List<EvalMetrics>();
        int lineNo = 0;
        foreach (string line in File.ReadLines(path))
        {
            lineNo++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            try
            {
                using JsonDocument doc = JsonDocument.Parse(line);
                JsonElement r = doc.RootElement;
                long step = r.GetProperty("step").GetInt64();
                if (r.TryGetProperty("eval_loss", out JsonElement el))
                {
                    eval.Add(new EvalMetrics(step, Num(el))
                    {
                        ExactMatch = r.TryGetProperty("eval_exact_match", out JsonElement x) ? Num(x) : null,
                        Preference = ReadPreference(r, "eval_"),
                    });
                    continue;
                }
                train.Add(new TrainMetrics(step, Num(r.GetProperty("loss")), Num(r.GetProperty("lr")), Num(r.GetProperty("tokens_per_s")),
                    r.GetProperty("peak_bytes").GetInt64())
                {
                    GradNorm = r.TryGetProperty("grad_norm", out JsonElement g) ? Num(g) : null,
                    ElapsedSeconds = r.TryGetProperty("elapsed_s", out JsonElement e) ? Num(e) : null,
                    Preference = ReadPreference(r, ""),
                    PeakSource = r.TryGetProperty("peak_source", out JsonElement ps) ? ps.GetString() : null,
                });
            }
            catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
            {
                throw new MetricsFormatException(path, lineNo, $"not a metrics line: {e.Message}", e);
            }
        }
        return new MetricsLog(train, eval);
    }

    // The pair count is not logged; a line read back says 0.
    private static PreferenceMetrics? ReadPreference(JsonElement r, string prefix) =>
        r.TryGetProperty(prefix + "reward_accuracy", out JsonElement a)
            ? new PreferenceMetrics(Num(r.GetProperty(prefix + "rewards_chosen")), Num(r.GetProperty(prefix + "rewards_rejected")), Num(a), 0)
            : null;

    private static double Num(JsonElement e) => e.ValueKind == JsonValueKind.Null ? double.NaN : e.GetDouble();
}
