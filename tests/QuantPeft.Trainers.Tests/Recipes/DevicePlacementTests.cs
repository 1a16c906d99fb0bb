using QuantPeft.Formats.HuggingFace;
using QuantPeft.Memory.Planning;
using QuantPeft.Quant.Torch;
using QuantPeft.Trainers.Adapters;
using QuantPeft.Trainers.Loss;
using QuantPeft.Trainers.Model;
using QuantPeft.Trainers.Recipes;
using QuantPeft.Trainers.Tokenizers;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Tests.Recipes;

/// <summary>
/// The whole run is built on the requested device. CI has no GPU, so the run is built for libtorch's <c>meta</c>
/// device, which every build has: tensors there have shapes and dtypes but no memory, so anything left on the CPU by a
/// missing device argument shows up as a CPU tensor, and any host-only read of a device tensor fails.
/// </summary>
[Collection(nameof(QuantPeft.Trainers.Tests.Recipes.ExactReplay))]
public class DevicePlacementTests
{
    // Rows of 64 columns: every projection is block-aligned, so the 4-bit slab path (the one CUDA takes) runs.
    private static readonly ModelSpec Small = new()
    {
        ModelType = "llama", NumLayers = 2, HiddenSize = 64, IntermediateSize = 128, NumHeads = 2, NumKvHeads = 1,
        VocabSize = ByteLevelTokenizer.Size, TieWordEmbeddings = false, MaxPositionEmbeddings = 64,
    };

    // DoRA (the column norms of the decoded base at attach) and LQ-LoRA (quantized where its base lives) compute while
    // they are built, and libtorch has no meta kernels for index_select and abs; their device path is covered by
    // TheDevicePathTrainsWithoutHostReadsToTheHostPathsLosses.
    public static TheoryData<string, string, string, bool> Runs => new()
    {
        { "lora", "nf4", "adamw", true },
        { "lora", "fp4", "adamw-8bit", false },
        { "vera", "nf4", "adamw", true },
        { "pissa", "nf4", "adamw", true },
        { "osora", "nf4", "adamw", true },
        { "lora", "bf16", "adamw", false },
        { "galore", "bf16", "galore-8bit", false },
        { "lora", "nf4", "paged-adamw", true },
    };

    [Theory]
    [MemberData(nameof(Runs))]
    public void EveryTensorOfTheRunIsOnTheRequestedDevice(string method, string weights, string optimizer, bool doubleQuant)
    {
        using var dir = new TempDir();
        string model = TinyRecipeFiles.WriteModel(Small, dir.File("model"));
        var options = Options(dir, model, method, weights, optimizer, doubleQuant);
        using var recipe = new FinetuneRecipe(options);
        recipe.Setup();

        var misplaced = new List<string>();
        void Check(string what, Tensor? t)
        {
            if (t is not null && t.device.type != DeviceType.META) misplaced.Add($"{what} on {t.device}");
        }
        foreach (var (name, p) in recipe.Model.named_parameters()) Check(name, p);
        foreach (var (name, b) in recipe.Model.named_buffers()) Check(name, b);
        int quantized = 0;
        var seen = new HashSet<object>(ReferenceEqualityComparer.Instance);
        foreach (var (name, module) in recipe.Model.named_modules())
        {
            if (!seen.Add(module)) continue;   // an adapter also lists the base it wraps
            QuantizedTensor? q = module switch { QuantizedBaseLinear b => b.Weight, _ => null };
            if (q is not null)
            {
                quantized++;
                Check(name + " codes", q.Packed);
                Check(name + " absmax", q.AbsMax);
                Check(name + " nested absmax", q.NestedAbsMax);
            }
            if (module is LqLoraBaseLinear lq)
            {
                quantized++;
                foreach (var (key, t) in lq.Weight!.Tensors) Check($"{name} {key}", t);
            }
        }
        if (weights != "bf16") Assert.Equal(14, quantized);
        var built = (QuantPeft.Optimizers.Optimizer)recipe.CurrentOptimizer;
        var optimizerState = built.StateTensors.ToList();
        Assert.NotEmpty(optimizerState);
        // Paged states are on the device while leased (their host pages are the backing store).
        using (built.Allocator.Acquire(optimizerState))
            foreach (var s in optimizerState) Check("optimizer state " + s.Name, s.Value);
        Assert.True(misplaced.Count == 0, string.Join("\n", misplaced));
    }

    [Fact]
    public void AHostReadOfADeviceTensorThrowsInsteadOfReading()
    {
        using var onDevice = zeros([4], ScalarType.Float32, device("meta"));
        var e = Assert.Throws<InvalidOperationException>(() => HostKernels.Bytes(onDevice));
        Assert.Contains("meta", e.Message);
        using var onHost = zeros([4], ScalarType.Float32);
        Assert.Equal(16, HostKernels.Bytes(onHost).Length);
        using (HostKernels.DeviceOnly())
            Assert.Throws<InvalidOperationException>(() => HostKernels.Bytes(onHost));
    }

    public static TheoryData<string, string, string, bool> DeviceRuns => new()
    {
        { "lora", "nf4", "adamw", true },
        { "dora", "fp4", "adamw-8bit", false },
        { "lora", "lq-lora:3", "paged-adamw", false },
        { "galore", "bf16", "galore-8bit", false },
    };

    /// <summary>
    /// The path a GPU run takes (every 4-bit quantize and decode in torch operations, double-quantized scales decoded by
    /// torch, no C heap trims), run on the CPU with the host paths closed: the run reaches no host-only read (any would
    /// throw), and its losses are bit-identical to the host path's, as the codecs promise.
    /// </summary>
    [Theory]
    [MemberData(nameof(DeviceRuns))]
    public void TheDevicePathTrainsWithoutHostReadsToTheHostPathsLosses(string method, string weights, string optimizer, bool doubleQuant)
    {
        using var dir = new TempDir();
        string model = TinyRecipeFiles.WriteModel(Small, dir.File("model"));
        var options = Options(dir, model, method, weights, optimizer, doubleQuant) with { Device = "cpu", Steps = 3 };
        var host = Losses(options, dir.File("host.jsonl"));
        List<double> device;
        using (HostKernels.DeviceOnly())
            device = Losses(options, dir.File("device.jsonl"));
        Assert.Equal(3, host.Count);
        Assert.Equal(host, device);
    }

    private static List<double> Losses(FinetuneOptions options, string metrics)
    {
        using (var recipe = new FinetuneRecipe(options))
        {
            recipe.Setup();
            using var log = new QuantPeft.Trainers.Training.MetricsWriter(metrics);
            recipe.Train(log);
        }
        return File.ReadLines(metrics).Select(l => System.Text.Json.JsonDocument.Parse(l).RootElement)
            .Where(e => e.TryGetProperty("loss", out _)).Select(e => e.GetProperty("loss").GetDouble()).ToList();
    }

    private static FinetuneOptions Options(TempDir dir, string model, string method, string weights, string optimizer, bool doubleQuant)
    {
        var (train, eval) = TinyRecipeFiles.WriteTask(dir, 32, 8);
        var (format, bits) = QuantPeft.Memory.Planning.Knob.ParseWeights(weights);
        return new FinetuneOptions
        {
            ModelFolder = model, DataPath = train, EvalPath = eval, Steps = 2, Rank = 4, MicroBatchSize = 4, SequenceLength = 32,
            EvalEvery = 0, ExactMatchRecords = 0, Seed = 3, Device = "meta",
            Method = QuantPeft.Memory.Planning.Knob.ParseMethod(method), Weights = format, LqLoraBits = bits, DoubleQuant = doubleQuant,
            Optimizer = Knob.ParseOptimizer(optimizer),
        };
    }
}
