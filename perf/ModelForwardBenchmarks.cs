using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Engines;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using QuantPeft.Formats.HuggingFace;
using QuantPeft.Trainers.Loss;
using QuantPeft.Trainers.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantPeft.Perf;

/// <summary>
/// Forward + backward (chunked cross-entropy, all parameters trainable) of a ~100M-parameter llama in
/// bf16, with and without per-block gradient checkpointing. Times are per token
/// (OperationsPerInvoke = tokens per step).
/// Run: <c>dotnet run -c Release --project perf -- --filter '*ModelForwardBenchmarks*'</c>.
/// </summary>
[Config(typeof(ShortInProcess))]
public class ModelForwardBenchmarks
{
    /// <summary>One warm-up and three measured steps, in process: each step takes seconds, and a child build would double the job.</summary>
    private sealed class ShortInProcess : ManualConfig
    {
        public ShortInProcess() => AddJob(Job.Default.WithStrategy(RunStrategy.Monitoring).WithLaunchCount(1)
            .WithWarmupCount(1).WithIterationCount(3).WithToolchain(new InProcessEmitToolchain(TimeSpan.FromMinutes(30), logOutput: true)));
    }

    private const int Batch = 1, SeqLen = 256;

    /// <summary>hidden 768, 12 layers, 12 heads / 4 kv heads, MLP 2048, vocab 32000, tied: 100.2M parameters.</summary>
    public static readonly ModelSpec Spec = new()
    {
        ModelType = "llama", NumLayers = 12, HiddenSize = 768, IntermediateSize = 2048, NumHeads = 12, NumKvHeads = 4,
        VocabSize = 32000, TieWordEmbeddings = true, MaxPositionEmbeddings = 2048,
    };

    private CausalLm _model = null!;
    private Tensor _ids = null!, _labels = null!;

    [Params(false, true)]
    public bool Checkpointing { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        manual_seed(0);
        _model = new CausalLm(Spec, new DecoderOptions { ComputeDType = ScalarType.BFloat16, GradientCheckpointing = Checkpointing });
        _ids = randint(0, Spec.VocabSize, [Batch, SeqLen], dtype: ScalarType.Int64);
        _labels = ChunkedCrossEntropy.ShiftLabels(_ids);
    }

    private readonly List<double> _cpuMsPerToken = new();

    [Benchmark(OperationsPerInvoke = Batch * SeqLen)]
    public float ForwardBackward()
    {
        var cpuBefore = System.Diagnostics.Process.GetCurrentProcess().TotalProcessorTime;
        try
        {
            return Step();
        }
        finally
        {
            // Wall time on a shared machine mostly measures the neighbours; process CPU time is printed beside it.
            var cpu = System.Diagnostics.Process.GetCurrentProcess().TotalProcessorTime - cpuBefore;
            _cpuMsPerToken.Add(cpu.TotalMilliseconds / (Batch * SeqLen));
        }
    }

    private float Step()
    {
        _model.zero_grad();
        using var scope = NewDisposeScope();
        var hidden = _model.Hidden(_ids);
        var loss = ChunkedCrossEntropy.Compute(hidden, _model.LmHeadWeight, _labels);
        loss.backward();
        return loss.item<float>();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        Console.WriteLine($"// cpu ms/token (checkpointing={Checkpointing}), warm-up first: "
            + string.Join(", ", _cpuMsPerToken.Select(v => v.ToString("F1", System.Globalization.CultureInfo.InvariantCulture))));
        _model.Dispose();
        _ids.Dispose();
        _labels.Dispose();
    }
}
