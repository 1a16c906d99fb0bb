using System.Text.Json;
using QuantPeft.Formats.HuggingFace;
using QuantPeft.Formats.Peft;
using QuantPeft.Formats.Safetensors;
using QuantPeft.Memory.Planning;
using QuantPeft.Trainers.Adapters;
using QuantPeft.Trainers.Export;
using QuantPeft.Trainers.Model;
using QuantPeft.Trainers.Recipes;
using QuantPeft.Trainers.Tokenizers;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Tests.Export;

public class MergedModelExportTests(ITestOutputHelper output)
{
    // Untied, so lm_head.weight is a checkpoint tensor of its own; q/k/v biases as qwen2 has them.
    private static readonly ModelSpec Tiny = new()
    {
        ModelType = "qwen2", NumLayers = 2, HiddenSize = 32, IntermediateSize = 64, NumHeads = 2, NumKvHeads = 1,
        VocabSize = ByteLevelTokenizer.Size, TieWordEmbeddings = false, MaxPositionEmbeddings = 64, AttentionBias = true,
    };

    private static string WriteBase(TempDir dir)
    {
        // Generators of their own here and below: tests running beside these draw from the global generator, and other
        // weights could pass the bf16 bounds by chance one run and not the next.
        using var generator = new Generator(3);
        using var model = new CausalLm(Tiny);
        using (no_grad())
            foreach (var (_, p) in model.named_parameters())
                if (p.dim() == 2) p.normal_(0, 0.2, generator);
        string folder = dir.File("base");
        ModelFolder.SaveByteLevel(model, folder);
        return folder;
    }

    // An adapter far from the identity: A and B random, so merging moves every targeted weight.
    private static string WriteAdapter(TempDir dir, string baseFolder, TrainingMethod method)
    {
        using var model = ModelFolder.Load(baseFolder, Tiny, Bf16Bases());
        var adapters = ModelAdapters.Attach(model, method, new LoraOptions(4, 8), ModelAdapters.AllLinear, seed: 5);
        using var generator = new Generator(6);
        using (no_grad())
            foreach (var a in adapters)
                foreach (var (name, t) in a.Layer.AdapterTensors())
                    if (name.StartsWith("lora_B", StringComparison.Ordinal)) t.normal_(0, 0.1, generator);
                    else if (name.StartsWith("lora_magnitude", StringComparison.Ordinal))
                    {
                        using var u = empty_like(t).uniform_(0.5, 1.5, generator);
                        t.mul_(u);
                    }
        var config = new PeftAdapterConfig
        {
            PeftType = "LORA", TaskType = "CAUSAL_LM", R = 4, LoraAlpha = 8, InferenceMode = true,
            TargetModules = PeftModuleSelector.FromNames(ModelAdapters.AllLinear), UseDora = method == TrainingMethod.Dora,
        };
        string folder = dir.File("adapter-" + method);
        PeftAdapter.Save(folder, config, adapters.SelectMany(a => a.Layer.AdapterTensors()
            .Select(kv => SafetensorsModelSource.Entry(LoraTensorNames.Prefix + a.ModulePath + "." + kv.Key, kv.Value))).ToList());
        return folder;
    }

    private static DecoderOptions Bf16Bases() => new()
    {
        ComputeDType = ScalarType.BFloat16, LinearFactory = BaseWeights.Factory(WeightFormat.Bf16, false, ScalarType.BFloat16),
    };

    private static Tensor Logits(CausalLm model)
    {
        using var ids = tensor(ByteLevelTokenizer.Instance.Encode("upper: merge => MERGE").Select(i => (long)i).ToArray()).unsqueeze(0);
        using (no_grad()) return model.forward(ids).to(ScalarType.Float32);
    }

    [Theory]
    [InlineData(TrainingMethod.Lora)]
    [InlineData(TrainingMethod.Dora)]
    public void MergedFolderLoadedAsAPlainModelGivesTheAdaptedLogits(TrainingMethod method)
    {
        using var dir = new TempDir();
        string baseFolder = WriteBase(dir);
        string adapter = WriteAdapter(dir, baseFolder, method);
        string merged = dir.File("merged");
        var result = MergedModelExport.Merge(adapter, baseFolder, merged, maxShardBytes: 1L << 30);
        Assert.Equal(2 * 7, result.MergedModules);
        Assert.Null(result.IndexFile);

        // Truth: the base with the adapter applied on the fly (unmerged), and the base alone.
        using var adapted = ModelFolder.Load(baseFolder, Tiny, Bf16Bases());
        using (var peft = PeftAdapter.Load(adapter)) PeftAdapterApplier.Apply(adapted, peft);
        using var expected = Logits(adapted);
        using var plainBase = ModelFolder.Load(baseFolder, Tiny, new DecoderOptions { ComputeDType = ScalarType.BFloat16 });
        using var baseLogits = Logits(plainBase);
        // The merged folder read as an ordinary dense model: plain linears, no adapter code involved.
        using var mergedModel = ModelFolder.Load(merged, ModelFolder.ReadSpec(merged), new DecoderOptions { ComputeDType = ScalarType.BFloat16 });
        using var actual = Logits(mergedModel);

        float scale = expected.abs().max().item<float>();
        float error = (actual - expected).abs().max().item<float>();
        float effect = (baseLogits - expected).abs().max().item<float>();
        float meanError = (actual - expected).abs().mean().item<float>(), meanEffect = (baseLogits - expected).abs().mean().item<float>();
        output.WriteLine($"{method}: max |logit| {scale:F3}, merged vs adapted max diff {error:F4} mean {meanError:F5}, adapter effect max {effect:F3} mean {meanEffect:F4}");
        // bf16 tolerance: the merged model rounds each merged weight to bf16 once, the adapted one rounds the base
        // product and the sum instead; through two blocks of bf16 activations the logits then differ by a few bf16
        // ulps (measured here: max 0.11 at a largest logit of 4.2, mean 0.013). Bound: max 5% and mean 1% of the
        // largest logit. The adapter itself moves the logits by more than 5 times the max bound, so the check
        // separates merged from unmerged; the exact merge formula is checked weight by weight below.
        Assert.True(error <= 0.05f * scale, $"merged vs adapted: max diff {error} at logit scale {scale}");
        Assert.True(meanError <= 0.01f * scale, $"merged vs adapted: mean diff {meanError} at logit scale {scale}");
        Assert.True(effect > 5 * 0.05f * scale, $"the adapter moves logits by only {effect}");

        // Weight by weight against the formula in f64: W' = W0 + s·B·A (LoRA), m ⊙ V / ‖V‖ per row with V = W0 + s·B·A
        // (DoRA), s = α/r = 2. The export rounds once to bf16: within 2^-8 relative (plus f32 slack near zero).
        const string module = "model.layers.1.mlp.down_proj";
        using var baseFile = SafetensorsFile.Open(Path.Combine(baseFolder, "model.safetensors"));
        using var adapterFile = SafetensorsFile.Open(Path.Combine(adapter, PeftAdapter.WeightsFileName));
        using var mergedFile = SafetensorsFile.Open(Path.Combine(merged, "model.safetensors"));
        float[] w0 = baseFile.ReadFloat32(module + ".weight"), w1 = mergedFile.ReadFloat32(module + ".weight");
        float[] a = adapterFile.ReadFloat32(LoraTensorNames.LoraA(module)), b = adapterFile.ReadFloat32(LoraTensorNames.LoraB(module));
        int rows = (int)Tiny.HiddenSize, cols = (int)Tiny.IntermediateSize, r = 4;
        var truth = new double[rows * cols];
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < cols; j++)
            {
                double d = 0;
                for (int k = 0; k < r; k++) d += (double)b[i * r + k] * a[k * cols + j];
                truth[i * cols + j] = w0[i * cols + j] + 2.0 * d;
            }
        if (method == TrainingMethod.Dora)
        {
            float[] m = adapterFile.ReadFloat32(LoraTensorNames.MagnitudeVector(module));
            for (int i = 0; i < rows; i++)
            {
                double norm = Math.Sqrt(Enumerable.Range(0, cols).Sum(j => truth[i * cols + j] * truth[i * cols + j]));
                for (int j = 0; j < cols; j++) truth[i * cols + j] *= m[i] / norm;
            }
        }
        for (int i = 0; i < truth.Length; i++)
            Assert.True(Math.Abs(w1[i] - truth[i]) <= Math.Abs(truth[i]) / 256 + 1e-5, $"{module}[{i}]: merged {w1[i]}, formula {truth[i]}");
    }

    [Fact]
    public void MergedCheckpointHasTheBaseNamesInBf16AHuggingFaceConfigAndTheTokenizer()
    {
        using var dir = new TempDir();
        string baseFolder = WriteBase(dir);
        string adapter = WriteAdapter(dir, baseFolder, TrainingMethod.Lora);
        string merged = dir.File("merged");
        MergedModelExport.Merge(adapter, baseFolder, merged, maxShardBytes: 1L << 30);

        using var source = SafetensorsFile.Open(Path.Combine(baseFolder, "model.safetensors"));
        using var single = SafetensorsFile.Open(Path.Combine(merged, "model.safetensors"));
        Assert.Equal(source.Tensors.Select(t => t.Name), single.Tensors.Select(t => t.Name));
        Assert.Equal(source.Tensors.Select(t => t.Shape), single.Tensors.Select(t => t.Shape));
        Assert.All(single.Tensors, t => Assert.Equal(SafetensorsDType.BF16, t.DType));
        Assert.Contains(single.Tensors, t => t.Name == "lm_head.weight");
        // Unadapted tensors are the base's bytes; adapted projections differ.
        Assert.Equal(source.ReadBytes("model.norm.weight"), single.ReadBytes("model.norm.weight"));
        Assert.Equal(source.ReadBytes("model.layers.0.self_attn.q_proj.bias"), single.ReadBytes("model.layers.0.self_attn.q_proj.bias"));
        Assert.NotEqual(source.ReadBytes("model.layers.1.mlp.down_proj.weight"), single.ReadBytes("model.layers.1.mlp.down_proj.weight"));

        using var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(merged, "config.json")));
        Assert.Equal("bfloat16", config.RootElement.GetProperty("torch_dtype").GetString());
        Assert.Equal("qwen2", config.RootElement.GetProperty("model_type").GetString());
        Assert.Equal(File.ReadAllText(Path.Combine(baseFolder, ModelFolder.ByteTokenizerFileName)), File.ReadAllText(Path.Combine(merged, ModelFolder.ByteTokenizerFileName)));
        Assert.Equal(["config.json", "model.safetensors", ModelFolder.ByteTokenizerFileName], Directory.GetFiles(merged).Select(Path.GetFileName).Order());
        Assert.Empty(Directory.GetDirectories(dir.Path, ".*"));

        // Sharded: the same tensors, split under an index, byte for byte.
        string sharded = dir.File("sharded");
        var result = MergedModelExport.Merge(adapter, baseFolder, sharded, maxShardBytes: 20_000);
        Assert.NotNull(result.IndexFile);
        Assert.True(result.WeightFiles.Count >= 3, $"{result.WeightFiles.Count} shards");
        using var checkpoint = SafetensorsCheckpoint.Open(sharded);
        Assert.Equal(single.Tensors.Select(t => t.Name).Order(), checkpoint.Tensors.Select(t => t.Name).Order());
        foreach (var t in single.Tensors)
            Assert.Equal(single.ReadBytes(t.Name), checkpoint.ReadBytes(t.Name));

        var e = Assert.Throws<ExportException>(() => MergedModelExport.Merge(adapter, baseFolder, merged, 1L << 30));
        Assert.Contains("already exists and is not empty", e.Message);
    }

    [Fact]
    public void AdapterForAnotherShapeIsRefusedBeforeAnythingIsWritten()
    {
        using var dir = new TempDir();
        string baseFolder = WriteBase(dir);
        string adapter = WriteAdapter(dir, baseFolder, TrainingMethod.Lora);
        // Same family and names, wider MLP: every gate/up/down adapter has the wrong shape.
        string other = dir.File("other");
        Directory.CreateDirectory(other);
        ModelConfigWriter.WriteToFolder(Tiny with { IntermediateSize = 96 }, other, "bfloat16");
        var e = Assert.Throws<ExportException>(() => MergedModelExport.Merge(adapter, other, dir.File("out"), 1L << 30));
        Assert.Contains("adapter_model.safetensors", e.Message);
        Assert.Contains("trained on another model", e.Message);
        Assert.False(Directory.Exists(dir.File("out")));
        Assert.Throws<ExportException>(() => PeftAdapterCopy.Copy(adapter, other, dir.File("out")));
        Assert.False(Directory.Exists(dir.File("out")));

        // The copy path validates and copies both PEFT files.
        var copied = PeftAdapterCopy.Copy(adapter, baseFolder, dir.File("copy"));
        Assert.Equal(File.ReadAllBytes(Path.Combine(adapter, PeftAdapter.WeightsFileName)), File.ReadAllBytes(copied.WeightFiles[0]));
        Assert.True(File.Exists(Path.Combine(copied.Folder, PeftAdapter.ConfigFileName)));
    }
}
