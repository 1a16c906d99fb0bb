using System.Diagnostics;
using QuantPeft.Formats.HuggingFace;
using QuantPeft.Memory.Planning;
using QuantPeft.Memory.Probes;
using QuantPeft.Trainers.Adapters;
using QuantPeft.Trainers.Model;
using QuantPeft.Trainers.Recipes;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantPeft.Perf.Tools;

/// <summary>
/// Measures the peak resident memory of loading a checkpoint with a 4-bit base quantized on load, against the
/// prediction "resident model + the largest single tensor in f32" (issue #3, quantize-on-load).
/// <c>perf quantize-on-load MODEL [nf4|fp4|bf16] [dq|no-dq]</c>; MODEL is a model folder (single file or shards)
/// or a <c>synthetic:</c> reference. Prints one Markdown table.
/// </summary>
internal static class QuantizeOnLoad
{
    public static int Run(string[] args)
    {
        if (args.Length is < 2 or > 4)
        {
            Console.Error.WriteLine("usage: quantize-on-load MODEL [nf4|fp4|bf16] [dq|no-dq]");
            return 1;
        }
        string reference = args[1];
        var format = BaseWeights.Parse(args.Length > 2 ? args[2] : "nf4", "format");
        bool doubleQuant = args.Length <= 3 || args[3] != "no-dq";
        ModelSpec spec = ModelFolder.ReadSpec(reference);

        // libtorch's code and its first allocations belong to the runtime, not to the load: start it before the baseline.
        using (var warm = ones(64, ScalarType.BFloat16)) warm.sum().Dispose();
        GC.Collect();
        var decoder = new DecoderOptions
        {
            ComputeDType = ScalarType.BFloat16,
            LinearFactory = BaseWeights.Factory(format, doubleQuant, ScalarType.BFloat16),
        };
        var clock = Stopwatch.StartNew();
        long peakAboveBaseline, baseline;
        bool hwmReset;
        long residentModel;
        using (var probe = new ProcessMemoryProbe(TimeSpan.FromMilliseconds(2)))
        {
            baseline = probe.BaselineBytes;
            hwmReset = probe.HighWaterMarkReset;
            using var model = ModelFolder.Load(reference, spec, decoder);
            clock.Stop();
            peakAboveBaseline = probe.PeakAboveBaselineBytes;
            residentModel = ResidentBytes(model);
        }

        long largest = spec.Tensors().Max(t => t.ElementCount);
        long predicted = residentModel + largest * 4;
        Console.WriteLine($"| model | `{reference}` ({spec.ParameterCount:N0} parameters, {spec.Tensors().Count()} tensors) |");
        Console.WriteLine("|---|---|");
        Console.WriteLine($"| base projections | {format.ToString().ToLowerInvariant()}{(format == WeightFormat.Bf16 ? "" : doubleQuant ? " + double quant" : "")} |");
        Console.WriteLine($"| checkpoint size in bf16 | {Gb(spec.ParameterCount * 2)} |");
        Console.WriteLine($"| resident model after load (codes, scales, bf16 embeddings/norms/head) | {Gb(residentModel)} |");
        Console.WriteLine($"| largest tensor ({largest:N0} elements) in f32 | {Gb(largest * 4)} |");
        Console.WriteLine($"| **predicted peak** (resident model + largest tensor in f32) | **{Gb(predicted)}** |");
        Console.WriteLine($"| **measured peak RSS above baseline** | **{Gb(peakAboveBaseline)}** ({(double)peakAboveBaseline / predicted:P1} of predicted) |");
        Console.WriteLine($"| baseline RSS (runtime + libtorch before load) | {Gb(baseline)} |");
        Console.WriteLine($"| kernel high-water mark reset at baseline | {(hwmReset ? "yes (VmHWM folded in)" : "no (sampled VmRSS every 2 ms only)")} |");
        Console.WriteLine($"| load wall time | {clock.Elapsed.TotalSeconds:F1} s |");
        Console.WriteLine($"| load throughput | {spec.ParameterCount / clock.Elapsed.TotalSeconds / 1e6:F1} M parameters/s |");
        return 0;
    }

    // Parameters and buffers (a tied head has no parameter of its own) plus the 4-bit bases, whose codes and scales
    // are not module parameters.
    private static long ResidentBytes(CausalLm model) =>
        model.parameters().Sum(p => p.numel() * p.ElementSize) + model.buffers().Sum(b => b.numel() * b.ElementSize)
        + model.modules().OfType<QuantizedBaseLinear>().Sum(q => q.StorageBytes);

    private static string Gb(long bytes) => $"{bytes / 1e9:F3} GB ({bytes / (double)(1L << 30):F3} GiB)";
}
