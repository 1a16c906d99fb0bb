using System.Diagnostics;
using QuantPeft.Formats.HuggingFace;
using QuantPeft.Memory.Planning;
using QuantPeft.Trainers.Adapters;
using QuantPeft.Trainers.Model;
using QuantPeft.Trainers.Pruning;
using QuantPeft.Trainers.Recipes;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantPeft.Perf.Tools;

/// <summary>
/// Loads a model folder once, pruned (LoRAM, random criterion) or not, and prints its resident parameter bytes and the
/// process's peak RSS, for comparing pruned and unpruned loads in separate processes (peak RSS is per process):
/// <c>perf loram-load DIR RATIO bf16|nf4</c> (RATIO 0 = unpruned).
/// </summary>
internal static class LoramLoadProbe
{
    public static int Run(string[] args)
    {
        if (args.Length != 4) { Console.Error.WriteLine("usage: loram-load DIR RATIO bf16|nf4"); return 1; }
        string folder = args[1];
        double ratio = double.Parse(args[2], System.Globalization.CultureInfo.InvariantCulture);
        var format = BaseWeights.Parse(args[3]);
        using (var warm = ones(4, 4, dtype: ScalarType.BFloat16)) warm.matmul(warm).Dispose();   // libtorch loaded before the baseline
        long baseline = Status("VmRSS");
        var spec = ModelFolder.ReadSpec(folder);
        var pruner = ratio > 0 ? new LoramPruner(spec, ratio, PruningCriterion.Random, seed: 42) : null;
        var clock = Stopwatch.StartNew();
        using var model = ModelFolder.Load(folder, spec, new DecoderOptions
        {
            LinearFactory = BaseWeights.Factory(format, doubleQuant: true, ScalarType.BFloat16),
            Pruning = pruner,
        });
        double seconds = clock.Elapsed.TotalSeconds;
        long dense = model.parameters().Sum(p => p.numel() * p.ElementSize);
        long quantized = model.modules().OfType<QuantizedBaseLinear>().Sum(q => q.StorageBytes);
        long parameters = pruner?.Plan.KeptParameterCount() ?? spec.ParameterCount;
        long peak = Status("VmHWM");
        Console.WriteLine($"ratio={ratio} weights={args[3]} kept_parameters={parameters} total_parameters={spec.ParameterCount} "
            + $"resident_parameter_bytes={dense + quantized} baseline_rss={baseline} peak_rss={peak} peak_minus_baseline={peak - baseline} load_s={seconds:F1}");
        return 0;
    }

    // /proc/self/status values are in kB.
    private static long Status(string key) =>
        long.Parse(File.ReadLines("/proc/self/status").First(l => l.StartsWith(key + ":", StringComparison.Ordinal))
            .Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], System.Globalization.CultureInfo.InvariantCulture) * 1024;
}
