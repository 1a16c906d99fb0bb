using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Engines;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using BenchmarkDotNet.Jobs;
using QuantPeft.Memory.Paging;
using QuantPeft.Memory.Planning;
using QuantPeft.Optimizers;
using QuantPeft.Optimizers.GaLore;
using QuantPeft.Optimizers.InBackward;
using TorchSharp.Modules;
using ParamGroup = QuantPeft.Optimizers.ParamGroup;
using static TorchSharp.torch;

namespace QuantPeft.Perf;

/// <summary>
/// Optimizer step time over 2^20 = 1,048,576 bf16 parameters (four 512×512 weights), and the measured state
/// bytes per parameter beside the formula (printed as STATE lines by the setup).
/// Run: <c>dotnet run -c Release --project perf -- --filter '*OptimizerStepBenchmarks*'</c>.
/// </summary>
[Config(typeof(MonitoringInProcessConfig))]
public class OptimizerStepBenchmarks
{
    private List<(string, Parameter)> _params = [];
    private IOptimizer? _optimizer;

    /// <summary>Every optimizer name (<see cref="Knob.OptimizerNames"/>).</summary>
    public static IEnumerable<string> OptimizerNames => Knob.OptimizerNames;

    /// <summary>The optimizer under test.</summary>
    [ParamsSource(nameof(OptimizerNames))]
    public string Optimizer { get; set; } = "adamw";

    /// <summary>Builds the parameters, their (fixed) gradients and the optimizer; prints the state bytes.</summary>
    [GlobalSetup]
    public void Setup()
    {
        // One intra-op thread: on a small shared machine libtorch's spinning worker threads turn load from
        // other processes into order-of-magnitude noise.
        set_num_threads(1);
        var gen = new Generator(1);
        _params = [.. Enumerable.Range(0, 4).Select(i =>
            ($"w{i}", new Parameter(randn([512, 512], generator: gen).to(ScalarType.BFloat16), true)))];
        foreach (var (_, p) in _params) p.grad = randn([512, 512], generator: gen).to(ScalarType.BFloat16).DetachFromDisposeScope();
        bool galore = Optimizer.Contains("galore");
        var natural = Optimizer == "natural-galore" ? new NaturalGaLoreOptions() : null;
        var options = new ParamGroupOptions(Lr: 1e-3, WeightDecay: 0.01,
            GaLore: galore ? new GaLoreOptions(128, 200, 0.25, GaLoreProjectionType.Std, natural) : null);
        // Paged: a budget of one weight's state (8-bit: 2·(262144 + 4·1024) B; f32: 2·262144·4 B), so every
        // step pages every weight in and out through the memory-mapped backing.
        long budget = Optimizer.EndsWith("8bit") ? 2 * (262_144 + 4 * 1024) : 2 * 262_144 * 4;
        _optimizer = OptimizerFactory.Create(Optimizer, [new ParamGroup("g", _params, options)],
            new OptimizerBuildOptions(Pager: new PagerOptions(budget, CPU, PageBacking.MappedFile)));
        var bytes = _optimizer.StateBytes;
        Console.WriteLine($"STATE {Optimizer}: device={bytes.Device} host={bytes.Host} disk={bytes.Disk} total={bytes.Total} " +
                          $"bytes/param={bytes.Total / (double)(1 << 20):F4} formula={Formula(Optimizer):F4}");
    }

    /// <summary>State bytes per parameter by formula for 512×512 weights.</summary>
    public static double Formula(string name) => name switch
    {
        "adamw" or "paged-adamw" => 8.0,                                  // two f32 moments
        "adamw-8bit" or "paged-adamw-8bit" => 2.0 + 2.0 * 4 / 256,        // 2 code bytes + one f32 absmax per 256 per moment
        "galore" => (2.0 * 512 * 128 * 4 + 128 * 512 * 2) / (512 * 512),  // f32 moments 512×128, bf16 projector 128×512
        "galore-8bit" => (2.0 * (512 * 128 + 4 * 256) + 128 * 512 * 2) / (512 * 512),
        "natural-galore" => (2.0 * 512 * 128 * 4 + 128 * 512 * 2 + 20.0 * 512 * 128 * 4) / (512 * 512), // + f32 history of 20
        _ => double.NaN,
    };

    /// <summary>One optimizer step over all four weights.</summary>
    [Benchmark]
    public void Step() => _optimizer!.Step();

    /// <summary>Frees the optimizer and its page files.</summary>
    [GlobalCleanup]
    public void Cleanup() => _optimizer?.Dispose();
}

/// <summary>
/// One training step (forward, backward, AdamW update) of an 8-layer MLP of 1024×1024 f32 weights,
/// ordinary vs optimizer-in-backward. The setup measures the peak RSS growth of one step (VmHWM after
/// resetting it through /proc/self/clear_refs) and prints it as PEAK lines.
/// </summary>
[Config(typeof(MonitoringInProcessConfig))]
public class OptimizerInBackwardMemoryBenchmarks
{
    private List<(string, Parameter)> _params = [];
    private IOptimizer? _optimizer;
    private OptimizerInBackward? _inBackward;
    private Tensor? _x;

    /// <summary>True: layer-wise updates during backward.</summary>
    [Params(false, true)]
    public bool LayerWise { get; set; }

    /// <summary>Builds the model and measures the peak of one step.</summary>
    [GlobalSetup]
    public void Setup()
    {
        var gen = new Generator(2);
        _params = [.. Enumerable.Range(0, 8).Select(i => ($"l{i}", new Parameter(randn([1024, 1024], generator: gen) / 32f, true)))];
        _x = randn([16, 1024], generator: gen).DetachFromDisposeScope();
        _optimizer = OptimizerFactory.Create("adamw", [new ParamGroup("g", _params, new ParamGroupOptions(Lr: 1e-4))]);
        if (LayerWise) _inBackward = new OptimizerInBackward(_optimizer);
        TrainStep(); // allocate optimizer state outside the measured step
        long rssBefore = ReadStatusKb("VmRSS");
        File.WriteAllText("/proc/self/clear_refs", "5"); // resets VmHWM to the current RSS
        TrainStep();
        long peak = ReadStatusKb("VmHWM");
        Console.WriteLine($"PEAK layerwise={LayerWise}: rss_before={rssBefore} kB peak={peak} kB growth={peak - rssBefore} kB " +
                          $"(all gradients = {8 * 1024 * 1024 * 4 / 1024} kB, one layer = {1024 * 1024 * 4 / 1024} kB)");
    }

    /// <summary>Forward, backward and update.</summary>
    [Benchmark]
    public void TrainStep()
    {
        using var scope = NewDisposeScope();
        var h = _x!;
        foreach (var (_, w) in _params)
            h = nn.functional.gelu(nn.functional.linear(h, _inBackward is null ? w : _inBackward.Use(w)));
        var loss = h.pow(2).mean();
        loss.backward();
        if (_inBackward is null)
        {
            _optimizer!.Step();
            _optimizer.ZeroGrad();
        }
    }

    /// <summary>Frees the optimizer.</summary>
    [GlobalCleanup]
    public void Cleanup() => _optimizer?.Dispose();

    private static long ReadStatusKb(string field)
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
            if (line.StartsWith(field + ":", StringComparison.Ordinal))
                return long.Parse(line[(field.Length + 1)..].Trim().Split(' ')[0]);
        return -1;
    }
}

/// <summary>
/// A short in-process job (1 warmup, 5 measured iterations of 2 invocations): the machine is small and
/// shared, and in-process runs skip building a separate benchmark executable per case.
/// </summary>
public sealed class MonitoringInProcessConfig : ManualConfig
{
    /// <summary>Creates the config.</summary>
    public MonitoringInProcessConfig() =>
        AddJob(Job.Default.WithToolchain(InProcessEmitToolchain.Instance).WithStrategy(RunStrategy.Monitoring)
            .WithLaunchCount(1).WithWarmupCount(1).WithIterationCount(5).WithInvocationCount(2).WithUnrollFactor(1));
}
