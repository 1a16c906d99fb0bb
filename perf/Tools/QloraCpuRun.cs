using System.Diagnostics;
using System.Globalization;
using System.Text;
using QuantPeft.Memory.Planning;
using QuantPeft.Memory.Probes;
using QuantPeft.Trainers.Data;
using QuantPeft.Trainers.Data.Demo;
using QuantPeft.Trainers.Recipes;
using QuantPeft.Trainers.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantPeft.Perf.Tools;

/// <summary>
/// The end-to-end QLoRA benchmark of issue #6: the real trainer (<see cref="FinetuneRecipe"/>) on any model reference
/// (typically <c>synthetic:llama-2-7b</c>) with an NF4 + double-quant base, LoRA on all linear layers, batch 1,
/// gradient checkpointing and AdamW, for a few optimizer steps; prints the load time, each step's loss and seconds,
/// and the peak resident memory above the pre-load baseline (<see cref="ProcessMemoryProbe"/>).
/// <c>perf qlora-run MODEL [STEPS=3] [SEQ=512] [RANK=64] [PRUNE=0]</c>; a PRUNE ratio above 0 makes it QLoRAM
/// (LoRAM structured pruning at that ratio, random criterion, the recovered adapter's shapes unchanged).
/// </summary>
internal static class QloraCpuRun
{
    public static int Run(string[] args)
    {
        if (args.Length is < 2 or > 6)
        {
            Console.Error.WriteLine("usage: qlora-run MODEL [STEPS=3] [SEQ=512] [RANK=64] [PRUNE=0]");
            return 1;
        }
        string reference = args[1];
        int steps = args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 3;
        int seq = args.Length > 3 ? int.Parse(args[3], CultureInfo.InvariantCulture) : 512;
        int rank = args.Length > 4 ? int.Parse(args[4], CultureInfo.InvariantCulture) : 64;
        double prune = args.Length > 5 ? double.Parse(args[5], CultureInfo.InvariantCulture) : 0;
        string work = Path.Combine(Path.GetTempPath(), "qpeft-qlora-run-" + Guid.NewGuid().ToString("N"));
        try
        {
            return Execute(reference, steps, seq, rank, prune, work);
        }
        finally
        {
            if (Directory.Exists(work)) Directory.Delete(work, recursive: true);
        }
    }

    private static int Execute(string reference, int steps, int seq, int rank, double prune, string work)
    {
        string data = WriteData(work, seq, records: 32);
        var options = new FinetuneOptions
        {
            ModelFolder = reference, DataPath = data, EvalFraction = 0.125,
            Weights = WeightFormat.Nf4, DoubleQuant = true, Rank = rank, Alpha = 16, Targets = ["all-linear"],
            Optimizer = OptimizerKind.AdamW, LearningRate = 2e-4, WarmupRatio = 0, MicroBatchSize = 1, SequenceLength = seq,
            GradientAccumulation = 1, Steps = steps, EvalEvery = 0, ExactMatchRecords = 0, Seed = 42,
            Checkpointing = true,
            Method = prune > 0 ? TrainingMethod.Loram : TrainingMethod.Lora, Prune = prune,
        };
        Console.WriteLine($"qlora-run {reference}: {(prune > 0 ? $"LoRAM pruning {prune} (random), " : "")}nf4 + double quant, LoRA r={rank} alpha=16 on all linear layers, AdamW, "
            + $"batch 1 x seq {seq}, gradient checkpointing, {steps} steps; {Environment.ProcessorCount} cores; started {DateTime.UtcNow:HH:mm:ss} UTC");

        using (var warm = ones(64, ScalarType.BFloat16)) warm.sum().Dispose();
        GC.Collect();
        using var probe = new ProcessMemoryProbe(TimeSpan.FromMilliseconds(5));
        using var recipe = new FinetuneRecipe(options);
        var clock = Stopwatch.StartNew();
        recipe.Setup();
        double setupSeconds = clock.Elapsed.TotalSeconds;
        long afterLoadPeak = probe.PeakAboveBaselineBytes;
        Console.WriteLine($"setup (load + quantize, adapters, optimizer) {setupSeconds:F1} s; base projections {recipe.BaseProjectionBytes:N0} bytes; "
            + $"{recipe.TrainableParameters:N0} trainable parameters on {recipe.Adapters.Count} projections; peak RSS above baseline so far {Gb(afterLoadPeak)}");

        var rows = new List<string>();
        var lap = Stopwatch.StartNew();
        using (var log = new MetricsWriter(Path.Combine(work, "metrics.jsonl")))
        {
            recipe.Train(log, r =>
            {
                double seconds = lap.Elapsed.TotalSeconds;
                lap.Restart();
                string row = $"| {r.Step} | {r.Loss:F4} | {seconds:F1} | {r.TokensPerSecond:F2} | {Gb(r.RssBytes)} | {Gb(probe.PeakAboveBaselineBytes)} |";
                rows.Add(row);
                Console.WriteLine($"step {r.Step}: loss {r.Loss:F4}, {seconds:F1} s, RSS {Gb(r.RssBytes)}, peak above baseline {Gb(probe.PeakAboveBaselineBytes)} ({DateTime.UtcNow:HH:mm:ss} UTC)");
            });
        }
        var rss = ProcessMemoryProbe.Read();
        Console.WriteLine();
        Console.WriteLine("| step | loss | seconds | tokens/s | RSS after step | peak RSS above baseline so far |");
        Console.WriteLine("|---:|---:|---:|---:|---:|---:|");
        foreach (var row in rows) Console.WriteLine(row);
        Console.WriteLine();
        Console.WriteLine($"| measure | value |");
        Console.WriteLine("|---|---|");
        Console.WriteLine($"| setup (load + quantize on load + adapters + optimizer) | {setupSeconds:F1} s |");
        Console.WriteLine($"| peak RSS above baseline after setup | {Gb(afterLoadPeak)} |");
        Console.WriteLine($"| **peak RSS above baseline, whole run** | **{Gb(probe.PeakAboveBaselineBytes)}** |");
        Console.WriteLine($"| baseline RSS (runtime + libtorch) | {Gb(probe.BaselineBytes)} |");
        Console.WriteLine($"| process VmHWM (absolute peak; reset at baseline: {(probe.HighWaterMarkReset ? "yes" : "no")}) | {Gb(rss.PeakBytes)} |");
        Console.WriteLine($"| base projections resident | {Gb(recipe.BaseProjectionBytes)} |");
        Console.WriteLine($"| trainable parameters | {recipe.TrainableParameters:N0} |");
        Console.WriteLine($"| total wall time | {clock.Elapsed.TotalSeconds:F1} s |");
        return 0;
    }

    // Plain-text rows of exactly seq - 2 ASCII bytes, so that BOS + text + EOS fill every row of the batch: the step
    // costs a full sequence, as the benchmark states.
    private static string WriteData(string folder, int seq, int records)
    {
        var text = new StringBuilder();
        foreach (var r in DemoPretrainCorpus.Generate(seed: 3, targetBytes: (long)records * seq * 2))
            foreach (char c in r.Text!)
                if (c is >= ' ' and <= '~') text.Append(c);
        int length = seq - 2;
        var rows = Enumerable.Range(0, records).Select(i => DatasetRecord.FromText(text.ToString(i * length % Math.Max(1, text.Length - length), length))).ToList();
        string path = Path.Combine(folder, "train.jsonl");
        JsonlDatasetWriter.Write(path, rows);
        return path;
    }

    private static string Gb(long bytes) => $"{bytes / 1e9:F2} GB";
}
