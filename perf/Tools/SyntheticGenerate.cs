using System.Diagnostics;
using QuantPeft.Formats.HuggingFace;
using QuantPeft.Trainers.Model;
using QuantPeft.Trainers.Recipes;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantPeft.Perf.Tools;

/// <summary>
/// Times the synthetic weight source alone: every tensor of a <c>synthetic:</c> model generated in bf16 and dropped,
/// then the same matrices drawn with torch's seeded <c>randn</c> (what the source used before the counter-based
/// generator), for comparison. <c>perf synthetic-gen MODEL [TENSORS]</c>; TENSORS caps how many tensors each method
/// generates (default all), since the torch baseline on a 7B shape takes many minutes.
/// </summary>
internal static class SyntheticGenerate
{
    public static int Run(string[] args)
    {
        if (args.Length is < 2 or > 3)
        {
            Console.Error.WriteLine("usage: synthetic-gen MODEL [TENSORS]");
            return 1;
        }
        ModelSpec spec = ModelFolder.ReadSpec(args[1]);
        int cap = args.Length > 2 ? int.Parse(args[2], System.Globalization.CultureInfo.InvariantCulture) : int.MaxValue;
        var matrices = spec.Tensors().Where(t => t.Role is not (TensorRole.Norm or TensorRole.Bias)).Take(cap).ToList();
        var source = new SyntheticTensorSource(spec, 0, args[1]);
        source.Get(matrices[0].Name).Dispose();

        var clock = Stopwatch.StartNew();
        long elements = 0;
        foreach (var t in matrices)
        {
            using var value = source.Get(t.Name);
            elements += value.numel();
        }
        double counterSeconds = clock.Elapsed.TotalSeconds;

        clock.Restart();
        foreach (var t in matrices)
        {
            using var generator = new Generator(SyntheticTensorSource.TensorSeed(0, t.Name));
            using var value = randn(t.Shape, ScalarType.BFloat16, generator: generator).mul_(SyntheticTensorSource.DefaultStd);
        }
        double torchSeconds = clock.Elapsed.TotalSeconds;

        Console.WriteLine($"| generator ({matrices.Count} matrices of `{args[1]}`, {elements:N0} values, bf16, {Environment.ProcessorCount} cores) | seconds | M values/s |");
        Console.WriteLine("|---|---:|---:|");
        Console.WriteLine($"| counter-based (CounterNormal, vectorised, parallel) | {counterSeconds:F2} | {elements / counterSeconds / 1e6:F0} |");
        Console.WriteLine($"| torch seeded randn (before) | {torchSeconds:F2} | {elements / torchSeconds / 1e6:F1} |");
        return 0;
    }
}
