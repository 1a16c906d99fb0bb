using BenchmarkDotNet.Running;
using QuantPeft.Perf.Tools;

namespace QuantPeft.Perf;

/// <summary>
/// Runs the BenchmarkDotNet suites (<c>dotnet run -c Release --project perf -- --filter '*Name*'</c>) or one of the
/// benchmark tools (<c>dotnet run -c Release --project perf -- synth-checkpoint …</c>, <c>quantize-on-load …</c>, <c>qlora-run …</c>).
/// </summary>
public static class Program
{
    public static int Main(string[] args)
    {
        if (args.Length > 0 && args[0] == "synth-checkpoint") return SyntheticCheckpoint.Run(args);
        if (args.Length > 0 && args[0] == "loram-load") return LoramLoadProbe.Run(args);
        if (args.Length > 0 && args[0] == "lisa-memory") return LisaMemory.Run(args);
        if (args.Length > 0 && args[0] == "quantize-on-load") return QuantizeOnLoad.Run(args);
        if (args.Length > 0 && args[0] == "qlora-run") return QloraCpuRun.Run(args);
        if (args.Length > 0 && args[0] == "synthetic-gen") return SyntheticGenerate.Run(args);
        if (args.Length > 0 && args[0] == "preference-curve") return PreferenceCurve.Run(args);
        if (args.Length == 5 && args[0] == "preference-chart") return PreferenceCurve.Chart(args);
        if (args.Length > 0 && args[0] == "memory-matrix") return MemoryMatrix.Run(args);
        if (args.Length > 0 && args[0] == "handoff-chart") return HandoffChart.Run(args);
        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
        return 0;
    }
}
