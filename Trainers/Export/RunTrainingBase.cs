using System.Text.Json;
using QuantPeft.Quant.Codecs;
using QuantPeft.Quant.Torch;

namespace QuantPeft.Trainers.Export;

/// <summary>
/// <c>--merge-onto auto</c>: the base a run's adapter was trained against, read from the run folder's <c>plan.json</c> (the
/// executed strategy's <c>weights</c> and <c>double_quant</c>). A 4-bit run (nf4, fp4) merges into that base dequantized,
/// which on the demo run gives the trained model's eval loss where the original weights do not
/// (perf/results/merge-onto.md); every other run (bf16, int8, LQ-LoRA, whose export is already relative to the original
/// weights) and a bare adapter folder without a run around it merge into the original weights.
/// </summary>
public static class RunTrainingBase
{
    /// <summary>The plan file a run folder keeps.</summary>
    public const string PlanFileName = "plan.json";

    /// <summary>
    /// The 4-bit base of the run <paramref name="adapterOrRun"/> belongs to (the folder itself or, for a run's
    /// <c>adapter/</c>, its parent), or null when it is not a 4-bit run or no <c>plan.json</c> says.
    /// </summary>
    /// <exception cref="ExportException">A <c>plan.json</c> that is not valid JSON or lacks the executed strategy.</exception>
    public static MergeBase? Find(string adapterOrRun)
    {
        string full = Path.GetFullPath(adapterOrRun).TrimEnd(Path.DirectorySeparatorChar);
        string? plan = new[] { full, Path.GetDirectoryName(full) }
            .Where(d => d is not null).Select(d => Path.Combine(d!, PlanFileName)).FirstOrDefault(File.Exists);
        if (plan is null) return null;
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(plan));
            var root = doc.RootElement;
            int chosen = root.TryGetProperty("chosen", out var c) && c.ValueKind == JsonValueKind.Number ? c.GetInt32() : 0;
            var strategy = root.GetProperty("candidates")[chosen].GetProperty("strategy");
            string weights = strategy.GetProperty("weights").GetString() ?? "";
            bool doubleQuant = strategy.TryGetProperty("double_quant", out var dq) && dq.ValueKind == JsonValueKind.True;
            return weights switch
            {
                "nf4" => new MergeBase(FourBitType.Nf4, doubleQuant),
                "fp4" => new MergeBase(FourBitType.Fp4, doubleQuant),
                _ => null,
            };
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or IndexOutOfRangeException)
        {
            throw new ExportException($"{plan}: no executed strategy with weights (candidates[chosen].strategy.weights): {e.Message}; pass --merge-onto original or dequantized");
        }
    }
}
