using System.CommandLine;
using QuantPeft.Cli.Commands;
using QuantPeft.Memory.Probes;

namespace QuantPeft.Cli;

/// <summary>Entry point of <c>qpeft</c>: one verb per file under <c>Commands/</c>.</summary>
public static class Program
{
    /// <summary>
    /// Set to <c>pinned</c> to pin glibc's mmap/trim thresholds at their static defaults (<see cref="NativeHeap.Configure"/>),
    /// so that the resident set of a CPU run follows its live tensors. Off by default: on a 2-core Debian 12 VM a page
    /// fault costs about 40 µs, and the pinned heap made the demo <c>qpeft train</c> 5x slower and a 1.1B step over 10x
    /// slower (perf/results/bench-memory-cpu.md); glibc's arenas reuse freed blocks without faulting them in again.
    /// </summary>
    public const string NativeHeapVariable = "QPEFT_NATIVE_HEAP";

    /// <summary>Runs the command line; exit codes: 0 success, 1 user error, 2 internal error.</summary>
    public static int Main(string[] args)
    {
        ConfigureNativeHeap();
        return BuildRoot().Parse(args).Invoke();
    }

    /// <summary>Pins the C heap's thresholds before any tensor exists when <see cref="NativeHeapVariable"/> asks for it; returns whether they were pinned.</summary>
    public static bool ConfigureNativeHeap() =>
        Environment.GetEnvironmentVariable(NativeHeapVariable) is { } v && v.Equals("pinned", StringComparison.OrdinalIgnoreCase)
        && NativeHeap.Configure();

    /// <summary>The root command with every verb attached (also used by the CLI tests).</summary>
    public static RootCommand BuildRoot()
    {
        var root = new RootCommand("QuantPeft: memory-planned QLoRA / GaLore / LISA / LoRAM fine-tuning on one GPU or a CPU.");
        foreach (Command verb in Verbs.All())
            root.Add(verb);
        return root;
    }
}
