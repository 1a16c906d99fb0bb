using System.Text.Json;
using System.Text.Json.Nodes;
using QuantPeft.Formats;
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
        // The memory of the device this run uses, whatever device the plan was priced for.
        DeviceKind kind = RunDevice.KindOf(options.Device);
        WarmRuntime(options.Device);
        // On a GPU the baseline is the CUDA context and the cuBLAS workspace, which WarmRuntime creates. The warm-up step
        // would add nothing the run's VRAM should not count (JIT and thread buffers are host memory), and TorchSharp cannot
        // empty the caching allocator, so the blocks it cached would sit in the baseline and hide part of the peak.
        string? warmUpFailure = kind == DeviceKind.Cuda ? "skipped on cuda" : WarmUpTraining(options);
        if (warmUpFailure is not null && kind != DeviceKind.Cuda)
            console.MarkupLine($"[yellow]warm-up step failed[/] ({Markup.Escape(warmUpFailure)}); the baseline holds libtorch only");
        using var probe = TrainingPeakProbe.Start(kind);
        using (var recipe = new FinetuneRecipe(options with { HeapGuard = true }))
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
            ["device"] = options.Device,
            ["warm_up"] = warmUpFailure is null ? "one step of the same strategy on a 4-layer synthetic model"
                : kind == DeviceKind.Cuda ? "none on cuda: a bf16 matmul on the device creates the context and the cuBLAS workspace before the baseline"
                : $"failed: {warmUpFailure}",
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

    /// <summary>
    /// Runs one step of the same strategy on a 4-layer synthetic model of hidden size max(256, rank) before the baseline,
    /// then frees it and trims the C heap. The runtime grows once training code first runs (the JIT-compiled forward,
    /// backward and optimizer paths, libtorch's per-thread kernel buffers, the .NET heap): 32–40 MiB of resident memory
    /// outside the C heap's blocks on the development machine (perf/results/bench-memory-cpu.md). That growth is the
    /// runtime's, priced by the overhead term, not the model's; without the warm-up it would count as the model's.
    /// Returns null, or why the warm-up failed (the measurement goes on without it).
    /// </summary>
    private static string? WarmUpTraining(FinetuneOptions options)
    {
        string dir = Path.Combine(Path.GetTempPath(), $"qpeft-warm-up-{Environment.ProcessId}-{Guid.NewGuid():N}");
        try
        {
            Directory.CreateDirectory(dir);
            int hidden = Math.Max(256, (options.Rank + 63) / 64 * 64);
            int heads = hidden / 64;
            var config = new JsonObject
            {
                ["architectures"] = new JsonArray("LlamaForCausalLM"), ["model_type"] = "llama", ["hidden_size"] = hidden,
                ["intermediate_size"] = 2 * hidden, ["num_hidden_layers"] = 4, ["num_attention_heads"] = heads,
                ["num_key_value_heads"] = Math.Max(1, heads / 2), ["vocab_size"] = 512, ["max_position_embeddings"] = Math.Max(2048, options.SequenceLength),
                ["rms_norm_eps"] = 1e-5, ["tie_word_embeddings"] = false, ["torch_dtype"] = "bfloat16",
            };
            string configPath = Path.Combine(dir, "config.json");
            File.WriteAllText(configPath, config.ToJsonString());
            var warm = options with
            {
                ModelFolder = QuantPeft.Trainers.Recipes.SyntheticModel.Prefix + configPath, Steps = 1, SaveEvery = 0, ResumeFrom = null,
                LisaLayers = Math.Min(options.LisaLayers, 2),
            };
            using (var recipe = new FinetuneRecipe(warm with { HeapGuard = true }))
            {
                recipe.Setup();
                using var log = new MetricsWriter(Path.Combine(dir, "metrics.jsonl"));
                recipe.Train(log);
            }
            return null;
        }
        catch (Exception e)
        {
            return e.Message;
        }
        finally
        {
            try { Directory.Delete(dir, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            GC.Collect();
            GC.WaitForPendingFinalizers();
            GC.Collect();
            NativeHeap.Trim();
        }
    }

    // Loads libtorch and starts its thread pool before the baseline, so the baseline holds the whole runtime; on a GPU
    // also the CUDA context and the cuBLAS handle with its workspace.
    private static void WarmRuntime(string device)
    {
        using var scope = torch.NewDisposeScope();
        var a = torch.ones(64, 64, dtype: torch.ScalarType.BFloat16);
        a.matmul(a).sum().to_type(torch.ScalarType.Float32).item<float>();
        if (RunDevice.KindOf(device) == DeviceKind.Cuda)
        {
            var d = torch.ones(64, 64, dtype: torch.ScalarType.BFloat16, device: torch.device(device));
            d.matmul(d).sum().to_type(torch.ScalarType.Float32).item<float>();
        }
    }
}
