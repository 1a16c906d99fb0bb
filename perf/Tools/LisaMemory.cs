using System.Diagnostics;
using QuantPeft.Formats.HuggingFace;
using QuantPeft.Memory.Planning;
using QuantPeft.Optimizers;
using QuantPeft.Trainers.Adapters;
using QuantPeft.Trainers.Loss;
using QuantPeft.Trainers.Model;
using QuantPeft.Trainers.Strategies;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantPeft.Perf.Tools;

/// <summary>
/// Memory of LISA against γ: builds a llama of the given shape on a dense bf16 base (weights N(0, 0.02²) from
/// a fixed seed; memory does not depend on the values), runs STEPS optimizer steps with K = 1 (a new draw every
/// step) and prints, per step, the active layers, the optimizer state bytes, the gradient bytes after backward and
/// the process RSS. γ = 0 runs plain full-parameter AdamW over every parameter for comparison (the state mainline
/// LMFlow's LISA converges to once every layer was active). One γ per process, so RSS is that γ's alone.
/// <c>perf lisa-memory LAYERS HIDDEN INTERMEDIATE HEADS VOCAB GAMMA STEPS</c>.
/// </summary>
internal static class LisaMemory
{
    public static int Run(string[] args)
    {
        if (args.Length != 8) { Console.Error.WriteLine("usage: lisa-memory LAYERS HIDDEN INTERMEDIATE HEADS VOCAB GAMMA STEPS"); return 1; }
        var spec = new ModelSpec
        {
            ModelType = "llama", NumLayers = int.Parse(args[1]), HiddenSize = int.Parse(args[2]), IntermediateSize = int.Parse(args[3]),
            NumHeads = int.Parse(args[4]), NumKvHeads = int.Parse(args[4]), VocabSize = int.Parse(args[5]), MaxPositionEmbeddings = 512,
        };
        int gamma = int.Parse(args[6]), steps = int.Parse(args[7]);
        manual_seed(1);
        using var model = new CausalLm(spec, new DecoderOptions
        {
            ComputeDType = ScalarType.BFloat16,
            LinearFactory = BaseWeights.Factory(WeightFormat.Bf16, doubleQuant: false, ScalarType.BFloat16),
        });
        using (no_grad())
            foreach (var p in model.parameters())
                if (p.dim() == 2) nn.init.normal_(p, 0, 0.02);
        var all = FullParameterTraining.Prepare(model);
        Optimizer Build(IReadOnlyList<(string Name, TorchSharp.Modules.Parameter Param)> trainable) =>
            OptimizerFactory.Create("adamw", [new ParamGroup("all", trainable, new ParamGroupOptions(Lr: 1e-4))]);
        var lisa = gamma > 0 ? new LisaSchedule(model, new LisaSampler(spec.NumLayers, gamma, seed: 42), 1, Build) : null;
        Optimizer? optimizer = lisa is null ? Build(all) : null;
        Console.WriteLine($"model: {spec.NumLayers} layers, hidden {spec.HiddenSize}, intermediate {spec.IntermediateSize}, vocab {spec.VocabSize}: {spec.ParameterCount:N0} parameters; γ = {(gamma == 0 ? "full AdamW" : gamma)}; RSS after build {Rss() >> 20} MiB");
        Console.WriteLine("| γ | step | active layers | optimizer state MiB | gradients MiB | RSS MiB | peak RSS MiB | s |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|");
        var generator = new torch.Generator(7);
        for (int step = 0; step < steps; step++)
        {
            var clock = Stopwatch.StartNew();
            if (lisa is not null) optimizer = lisa.BeforeStep(step, optimizer);
            long gradBytes;
            using (var scope = NewDisposeScope())
            {
                var ids = randint(0, spec.VocabSize, [1, 64], generator: generator);
                var loss = ChunkedCrossEntropy.Compute(model.Hidden(ids), model.LmHeadWeight, ids);
                loss.backward();
                gradBytes = model.parameters().Where(p => p.grad is not null).Sum(p => p.grad!.numel() * p.grad.ElementSize);
            }
            optimizer!.Step();
            optimizer.ZeroGrad();
            using var process = Process.GetCurrentProcess();
            string layers = lisa is null ? "all" : string.Join(",", lisa.ActiveLayers);
            Console.WriteLine($"| {(gamma == 0 ? "full" : gamma)} | {step} | {layers} | {optimizer.StateBytes.Total / 1048576.0:F1} | {gradBytes / 1048576.0:F1} | {process.WorkingSet64 >> 20} | {process.PeakWorkingSet64 >> 20} | {clock.Elapsed.TotalSeconds:F1} |");
        }
        optimizer?.Dispose();
        return 0;
    }

    private static long Rss()
    {
        using var process = Process.GetCurrentProcess();
        return process.WorkingSet64;
    }
}
