using System.CommandLine;
using QuantPeft.Cli.Commands;
using QuantPeft.Memory.Probes;

namespace QuantPeft.Cli;

/// <summary>Entry point of <c>qpeft</c>: one verb per file under <c>Commands/</c>.</summary>
public static class Program
{
    /// <summary>
    /// Set to <c>glibc</c> to keep glibc's dynamic mmap/trim thresholds instead of the pinned ones
    /// (<see cref="NativeHeap.Configure"/>); glibc's own <c>MALLOC_MMAP_THRESHOLD_</c> / <c>MALLOC_TRIM_THRESHOLD_</c>
    /// are also respected. Exists to compare the two heap behaviours (perf/results/bench-memory-cpu.md).
    /// </summary>
    public const string NativeHeapVariable = "QPEFT_NATIVE_HEAP";

    /// <summary>Runs the command line; exit codes: 0 success, 1 user error, 2 internal error.</summary>
    public static int Main(string[] args)
    {
        ConfigureNativeHeap();
        return BuildRoot().Parse(args).Invoke();
    }

    /// <summary>
    /// Pins the C heap's thresholds before any tensor exists, so that the resident set of a CPU run follows its live
    /// tensors (why: <see cref="NativeHeap"/>), unless the user chose glibc's behaviour through the environment.
    /// Returns whether the thresholds were pinned.
    /// </summary>
    public static bool ConfigureNativeHeap()
    {
        bool userChoice = Environment.GetEnvironmentVariable(NativeHeapVariable) is { } v && v.Equals("glibc", StringComparison.OrdinalIgnoreCase)
            || Environment.GetEnvironmentVariable("MALLOC_MMAP_THRESHOLD_") is not null
            || Environment.GetEnvironmentVariable("MALLOC_TRIM_THRESHOLD_") is not null;
        return !userChoice && NativeHeap.Configure();
    }

    /// <summary>The root command with every verb attached (also used by the CLI tests).</summary>
    public static RootCommand BuildRoot()
    {
        var root = new RootCommand("QuantPeft: memory-planned QLoRA / GaLore / LISA / LoRAM fine-tuning on one GPU or a CPU.");
        foreach (Command verb in Verbs.All())
            root.Add(verb);
        return root;
    }
}
