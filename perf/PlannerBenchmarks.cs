using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Engines;
using QuantPeft.Memory.Planning;
using QuantPeft.Memory.Presets;

namespace QuantPeft.Perf;

/// <summary>The full planner search (every knob open) for a 70B model: must stay well under 2 seconds.</summary>
[SimpleJob(RunStrategy.Monitoring, launchCount: 1, warmupCount: 1, iterationCount: 5)]
[MemoryDiagnoser]
public class PlannerBenchmarks
{
    private readonly Budget _budget = new() { Vram = 24L << 30, Ram = 64L << 30 };

    [Params("llama-3.1-70b", "llama-2-7b")]
    public string Model { get; set; } = "llama-3.1-70b";

    [Benchmark]
    public int FullSearch() =>
        Planner.Plan(ModelPresets.Get(Model), new Workload(2048), _budget, new Constraints()).Candidates.Count;
}
