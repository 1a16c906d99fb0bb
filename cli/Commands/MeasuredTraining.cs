using System.Text.Json;
using System.Text.Json.Nodes;
using QuantPeft.Memory.CostModel;
using QuantPeft.Memory.Planning;
using QuantPeft.Memory.Probes;
using QuantPeft.Memory.Reports;
using QuantPeft.Trainers.Recipes;
using QuantPeft.Trainers.Training;
using Spectre.Console;
using TorchSharp;

namespace QuantPeft.Cli.Commands;

/// <summary>
/// <c>qpeft train … --measure-peak FILE</c>: trains the plan's steps with no evaluation and writes the measured
/// peak above a baseline taken after the runtime (libtorch, its thread pool) is up and before the model loads,
/// beside the plan's prediction. <c>qpeft bench-memory</c> runs this in a fresh process per strategy.
/// </summary>
internal static class MeasuredTraining
{
    public static int Run(FinetuneOptions options, string runFolder, TrainingPlan plan, string measureFile, IAnsiConsole console)
    {
        Directory.CreateDirectory(runFolder);
        RunPlanFile.Write(runFolder, plan, options);
        options = options with { EvalEvery = 0, ExactMatchRecords = 0 };
        WarmRuntime();
        DeviceKind kind = plan.Budget.DeviceKind;
        using var probe = TrainingPeakProbe.Start(kind);
        using (var recipe = new FinetuneRecipe(options))
        {
            recipe.Setup();
            probe.Mark("setup");
            using var log = new MetricsWriter(Path.Combine(runFolder, "metrics.jsonl"));
            recipe.Train(log, r =>
            {
                probe.Mark($"step {r.Step}");
                console.MarkupLine($"step {r.Step} loss {r.Loss:F3} {r.TokensPerSecond:F0} tok/s");
            });
        }
        long peak = probe.PeakAboveBaselineBytes;
        Candidate? predicted = plan.ChosenCandidate;
        var json = new JsonObject
        {
            ["device_kind"] = kind.ToString().ToLowerInvariant(),
            ["source"] = probe.Source,
            ["baseline_bytes"] = probe.BaselineBytes,
            ["peak_above_baseline_bytes"] = peak,
            ["predicted_peak_bytes"] = predicted?.Estimate.PeakBytes,
            ["predicted_runtime_overhead_bytes"] = predicted?.Estimate.Device[MemoryComponent.RuntimeOverhead],
            ["strategy"] = predicted?.Strategy.Describe(),
            ["steps"] = options.Steps,
            ["marks"] = new JsonArray([.. probe.Marks.Select(m => (JsonNode)new JsonObject
            {
                ["label"] = m.Label, ["current_bytes"] = m.CurrentBytes, ["phase_peak_bytes"] = m.PhasePeakBytes,
                ["c_heap"] = HeapJson(m.Heap), ["managed_committed_bytes"] = m.ManagedBytes,
                ["phase_c_heap_live_peak_bytes"] = m.PhaseLivePeakBytes,
            })]),
            ["baseline_c_heap"] = HeapJson(probe.BaselineHeap),
            ["c_heap_thresholds_pinned"] = NativeHeap.IsConfigured,
        };
        AtomicFile.WriteAllText(measureFile, json.ToJsonString(new JsonSerializerOptions { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }) + "\n");
        console.MarkupLine($"[bold]measured peak[/] {ByteSize.Format(peak)} above a baseline of {ByteSize.Format(probe.BaselineBytes)} ({Markup.Escape(probe.Source)}); written to {Markup.Escape(measureFile)}");
        return CliRunner.Ok;
    }

    private static JsonObject? HeapJson(NativeHeapStats? h) => h is not { } x ? null : new JsonObject
    {
        ["arena_bytes"] = x.ArenaBytes, ["in_use_bytes"] = x.InUseBytes, ["free_bytes"] = x.FreeBytes, ["mapped_bytes"] = x.MappedBytes,
    };

    // Loads libtorch and starts its thread pool before the baseline, so the baseline holds the whole runtime.
    private static void WarmRuntime()
    {
        using var scope = torch.NewDisposeScope();
        var a = torch.ones(64, 64, dtype: torch.ScalarType.BFloat16);
        a.matmul(a).sum().to_type(torch.ScalarType.Float32).item<float>();
    }
}
