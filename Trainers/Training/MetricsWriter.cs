using System.Buffers;
using System.Text.Json;

namespace QuantPeft.Trainers.Training;

/// <summary>
/// Appends metrics to <c>metrics.jsonl</c>, one JSON object per line. Each line is built in memory and
/// handed to the OS in a single unbuffered write followed by a flush, so a reader tailing the file
/// (or a crash) never sees half a line, and every logged step survives a killed process.
/// </summary>
/// <remarks>
/// Keys: train lines have <c>step</c>, <c>loss</c>, <c>lr</c>, <c>tokens_per_s</c>, <c>peak_bytes</c>
/// and optionally <c>grad_norm</c>, <c>elapsed_s</c>; eval lines have <c>step</c>, <c>eval_loss</c>,
/// <c>eval_perplexity</c> and optionally <c>eval_exact_match</c>; preference runs add <c>rewards_chosen</c>,
/// <c>rewards_rejected</c>, <c>reward_margin</c> and <c>reward_accuracy</c> (<c>eval_</c>-prefixed on eval lines). JSON has no NaN or infinity, so a
/// non-finite value (a diverged loss) is written as <c>null</c>.
/// </remarks>
public sealed class MetricsWriter : IDisposable
{
    private readonly FileStream _stream;
    private readonly ArrayBufferWriter<byte> _line = new(256);

    /// <summary>Opens <paramref name="path"/>: a new file, or the end of an existing one when <paramref name="append"/> (resuming a run).</summary>
    public MetricsWriter(string path, bool append = false)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        FilePath = path;
        // bufferSize 0: every Write goes straight to the OS, one call per line.
        _stream = new FileStream(path, append ? FileMode.Append : FileMode.Create, FileAccess.Write, FileShare.Read, bufferSize: 0);
    }

    /// <summary>The file being written.</summary>
    public string FilePath { get; }

    /// <summary>Appends a training line.</summary>
    public void Write(TrainMetrics m) => WriteLine(json =>
    {
        json.WriteNumber("step", m.Step);
        Number(json, "loss", m.Loss);
        Number(json, "lr", m.LearningRate);
        Number(json, "tokens_per_s", m.TokensPerSecond);
        json.WriteNumber("peak_bytes", m.PeakBytes);
        if (m.GradNorm is double g) Number(json, "grad_norm", g);
        if (m.ElapsedSeconds is double e) Number(json, "elapsed_s", e);
        if (m.Preference is { } p) Preference(json, "", p);
        if (m.PeakSource is { } source) json.WriteString("peak_source", source);
    });

    /// <summary>Appends an evaluation line.</summary>
    public void Write(EvalMetrics m) => WriteLine(json =>
    {
        json.WriteNumber("step", m.Step);
        Number(json, "eval_loss", m.EvalLoss);
        Number(json, "eval_perplexity", m.EvalPerplexity);
        if (m.ExactMatch is double x) Number(json, "eval_exact_match", x);
        if (m.Preference is { } p) Preference(json, "eval_", p);
    });

    private static void Preference(Utf8JsonWriter json, string prefix, PreferenceMetrics p)
    {
        Number(json, prefix + "rewards_chosen", p.RewardsChosen);
        Number(json, prefix + "rewards_rejected", p.RewardsRejected);
        Number(json, prefix + "reward_margin", p.Margin);
        Number(json, prefix + "reward_accuracy", p.Accuracy);
    }

    /// <inheritdoc/>
    public void Dispose() => _stream.Dispose();

    private void WriteLine(Action<Utf8JsonWriter> body)
    {
        _line.ResetWrittenCount();
        using (var json = new Utf8JsonWriter(_line))
        {
            json.WriteStartObject();
            body(json);
            json.WriteEndObject();
        }
        _line.Write("\n"u8);
        _stream.Write(_line.WrittenSpan);
        _stream.Flush();
    }

    private static void Number(Utf8JsonWriter json, string name, double value)
    {
        if (double.IsFinite(value)) json.WriteNumber(name, value);
        else json.WriteNull(name);
    }
}
