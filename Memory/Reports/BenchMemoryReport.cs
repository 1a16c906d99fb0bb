using System.Globalization;
using System.Text;
using System.Text.Json;
using QuantPeft.Memory.Planning;

namespace QuantPeft.Memory.Reports;

/// <summary>
/// One strategy of a <c>qpeft bench-memory</c> run: the planner's prediction and what the fresh training process
/// measured. Both sides are taken above the runtime: the prediction without its runtime-overhead term, the
/// measurement above the baseline taken before the model loads (which holds the runtime). The overhead term is
/// reported beside the measured baseline so that it is checked too.
/// </summary>
/// <param name="Name">The strategy as spelled on the command line.</param>
/// <param name="Summary">The planner's one-line description of the strategy.</param>
/// <param name="PredictedBytes">Predicted peak minus the runtime overhead.</param>
/// <param name="PredictedOverheadBytes">The runtime-overhead term.</param>
/// <param name="MeasuredBytes">Measured peak above the baseline, or null when the run failed.</param>
/// <param name="BaselineBytes">Measured memory at the baseline (the runtime), or null when the run failed.</param>
/// <param name="Failure">Why the run produced no measurement (null when it did).</param>
public sealed record BenchMemoryRow(string Name, string Summary, long PredictedBytes, long PredictedOverheadBytes,
    long? MeasuredBytes, long? BaselineBytes, string? Failure)
{
    /// <summary>(predicted − measured) / measured in %, or null without a measurement.</summary>
    public double? ErrorPercent => MeasuredBytes is > 0 and { } m ? 100.0 * (PredictedBytes - m) / m : null;
}

/// <summary>What was benchmarked, for the report's header.</summary>
/// <param name="Model">The model folder.</param>
/// <param name="ParameterCount">Its parameters.</param>
/// <param name="DeviceKind">The device the peaks were read from.</param>
/// <param name="Batch">Micro-batch size.</param>
/// <param name="Seq">Sequence length.</param>
/// <param name="Steps">Optimizer steps per strategy.</param>
/// <param name="Source">What the measurement reads (VmRSS / cudaMemGetInfo).</param>
public sealed record BenchMemorySetup(string Model, long ParameterCount, DeviceKind DeviceKind, int Batch, int Seq, int Steps, string Source);

/// <summary>The bench's table as Markdown and JSON.</summary>
public static class BenchMemoryReport
{
    private const double MiB = 1 << 20;

    /// <summary>A Markdown section: the setup, then one row per strategy.</summary>
    public static string Markdown(BenchMemorySetup setup, IReadOnlyList<BenchMemoryRow> rows)
    {
        var sb = new StringBuilder();
        sb.AppendLine(CultureInfo.InvariantCulture, $"Model `{setup.Model}` ({setup.ParameterCount:N0} parameters), device {setup.DeviceKind.ToString().ToLowerInvariant()}, "
            + $"micro-batch {setup.Batch} × seq {setup.Seq}, {setup.Steps} steps per strategy, each in a fresh process; measured: {setup.Source}.");
        sb.AppendLine();
        sb.AppendLine("| strategy | plan | predicted (MiB) | measured (MiB) | error | overhead term (MiB) | measured baseline (MiB) |");
        sb.AppendLine("|---|---|---:|---:|---:|---:|---:|");
        foreach (BenchMemoryRow r in rows)
        {
            string measured = r.MeasuredBytes is { } m ? F(m) : "failed";
            string error = r.ErrorPercent is { } e ? e.ToString("+0.0;-0.0;0.0", CultureInfo.InvariantCulture) + "%" : Escape(r.Failure ?? "");
            string baseline = r.BaselineBytes is { } b ? F(b) : "";
            sb.AppendLine(CultureInfo.InvariantCulture, $"| {Escape(r.Name)} | {Escape(r.Summary)} | {F(r.PredictedBytes)} | {measured} | {error} | {F(r.PredictedOverheadBytes)} | {baseline} |");
        }
        return sb.ToString();
    }

    /// <summary>The rows as JSON (bytes as integers, error in % or null).</summary>
    public static string Json(BenchMemorySetup setup, IReadOnlyList<BenchMemoryRow> rows)
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            w.WriteString("model", setup.Model);
            w.WriteNumber("parameter_count", setup.ParameterCount);
            w.WriteString("device_kind", setup.DeviceKind.ToString().ToLowerInvariant());
            w.WriteNumber("batch", setup.Batch);
            w.WriteNumber("seq", setup.Seq);
            w.WriteNumber("steps", setup.Steps);
            w.WriteString("source", setup.Source);
            w.WriteStartArray("strategies");
            foreach (BenchMemoryRow r in rows)
            {
                w.WriteStartObject();
                w.WriteString("name", r.Name);
                w.WriteString("summary", r.Summary);
                w.WriteNumber("predicted_bytes", r.PredictedBytes);
                w.WriteNumber("predicted_overhead_bytes", r.PredictedOverheadBytes);
                if (r.MeasuredBytes is { } m) w.WriteNumber("measured_bytes", m); else w.WriteNull("measured_bytes");
                if (r.BaselineBytes is { } b) w.WriteNumber("baseline_bytes", b); else w.WriteNull("baseline_bytes");
                if (r.ErrorPercent is { } e) w.WriteNumber("error_percent", Math.Round(e, 2)); else w.WriteNull("error_percent");
                if (r.Failure is { } f) w.WriteString("failure", f); else w.WriteNull("failure");
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(stream.ToArray()) + "\n";
    }

    private static string F(long bytes) => (bytes / MiB).ToString("N1", CultureInfo.InvariantCulture);

    private static string Escape(string text) => text.Replace("|", "\\|", StringComparison.Ordinal).ReplaceLineEndings(" ");
}
