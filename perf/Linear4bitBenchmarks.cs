using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using QuantPeft.Quant.Torch;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace QuantPeft.Perf;

/// <summary>
/// One forward + backward (grad of the input) through a 4-bit NF4 (double-quantized) linear layer against a
/// bf16 <c>nn.Linear</c> of the same shape, 512 tokens, bf16 on CPU. The dense baseline is measured twice:
/// frozen weight (the same work as the 4-bit layer: forward + grad_input) and trainable weight (adds grad_weight).
/// </summary>
[Config(typeof(Linear4bitConfig))]
public class Linear4bitBenchmarks
{
    private sealed class Linear4bitConfig : ManualConfig
    {
        public Linear4bitConfig()
        {
            // In-process: the shared 2-core machine cannot rebuild the generated project within BDN's timeout.
            AddJob(Job.Default.WithLaunchCount(1).WithWarmupCount(1).WithIterationCount(3)
                .WithInvocationCount(1).WithUnrollFactor(1).WithToolchain(InProcessEmitToolchain.Instance));
        }
    }

    private const long Tokens = 512;

    /// <summary>Weight shape out×in: a square attention projection and Llama-7B's up_proj.</summary>
    [Params("4096x4096", "11008x4096")]
    public string Shape { get; set; } = "4096x4096";

    private Linear4bit _fourBit = null!;
    private Linear _denseFrozen = null!;
    private Linear _denseTrainable = null!;
    private Tensor _x = null!;
    private Tensor _gradOut = null!;

    [GlobalSetup]
    public void Setup()
    {
        var parts = Shape.Split('x');
        long outF = long.Parse(parts[0]), inF = long.Parse(parts[1]);
        var gen = new torch.Generator(1);
        using var w = torch.randn([outF, inF], generator: gen).mul_(0.02).to(ScalarType.BFloat16);
        _fourBit = Linear4bit.Quantize(w, doubleQuant: true);
        _denseFrozen = torch.nn.Linear(inF, outF, hasBias: false, dtype: ScalarType.BFloat16);
        _denseTrainable = torch.nn.Linear(inF, outF, hasBias: false, dtype: ScalarType.BFloat16);
        using (torch.no_grad())
        {
            _denseFrozen.weight!.copy_(w);
            _denseTrainable.weight!.copy_(w);
        }
        _denseFrozen.weight!.requires_grad = false;
        _x = torch.randn([Tokens, inF], generator: gen).to(ScalarType.BFloat16);
        _gradOut = torch.randn([Tokens, outF], generator: gen).to(ScalarType.BFloat16);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _fourBit.Dispose();
        _denseFrozen.Dispose();
        _denseTrainable.Dispose();
        _x.Dispose();
        _gradOut.Dispose();
    }

    private void Step(torch.nn.Module<Tensor, Tensor> layer)
    {
        using var scope = torch.NewDisposeScope();
        var x = _x.detach().requires_grad_(true);
        var y = layer.forward(x);
        y.backward([_gradOut]);
    }

    /// <summary>bf16 nn.Linear, frozen weight: forward + grad_input.</summary>
    [Benchmark(Baseline = true)]
    public void DenseFrozen() => Step(_denseFrozen);

    /// <summary>bf16 nn.Linear, trainable weight: forward + grad_input + grad_weight.</summary>
    [Benchmark]
    public void DenseTrainable()
    {
        _denseTrainable.zero_grad();
        Step(_denseTrainable);
    }

    /// <summary>4-bit NF4 + double quant: dequantize, forward, dequantize again, grad_input.</summary>
    [Benchmark]
    public void FourBit() => Step(_fourBit);

    /// <summary>One dequantization of the weight to bf16 (the 4-bit layer does two per step).</summary>
    [Benchmark]
    public void DequantizeOnly()
    {
        using var w = _fourBit.Weight.Dequantize(ScalarType.BFloat16);
    }
}
