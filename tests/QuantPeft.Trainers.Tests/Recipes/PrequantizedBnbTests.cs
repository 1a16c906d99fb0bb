using System.Text.Json;
using QuantPeft.Memory.Planning;
using QuantPeft.Quant.Checkpoints;
using QuantPeft.Trainers.Adapters;
using QuantPeft.Trainers.Model;
using QuantPeft.Trainers.Recipes;
using QuantPeft.Trainers.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Tests.Recipes;

public class PrequantizedBnbTests
{
    [Fact]
    public void ShortRunOnAnNf4FolderLowersTheLossByAWideMarginAndSavesAnAdapterOnIt()
    {
        using var dir = new TempDir();
        string stored = PrequantizedFixtures.Bitsandbytes(RecipeTests.WriteTinyModel(dir), dir.File("quantized"), CheckpointFormat.Nf4, doubleQuant: true);
        var options = RecipeTests.Options(dir, stored, steps: 20, trainRecords: 16);
        using var recipe = new FinetuneRecipe(options);
        recipe.Setup();
        using (var log = new MetricsWriter(dir.File("metrics.jsonl"))) recipe.Train(log);
        var losses = File.ReadLines(dir.File("metrics.jsonl")).Select(l => JsonDocument.Parse(l).RootElement)
            .Where(e => e.TryGetProperty("loss", out _)).Select(e => e.GetProperty("loss").GetDouble()).ToList();
        Assert.True(losses.Skip(15).Average() < losses.Take(5).Average() - 1.0, string.Join(" ", losses.Select(l => l.ToString("F3"))));
        recipe.Save(dir.File("adapter"));
        using var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir.File("adapter"), "adapter_config.json")));
        Assert.Equal(Path.GetFullPath(stored), config.RootElement.GetProperty("base_model_name_or_path").GetString());
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void HandBuiltBitsandbytesTensorsDequantizeToTheHandComputedValues(bool nested)
    {
        // Premises from bitsandbytes' signed dynamic map (create_dynamic_map(signed=True)): it holds 0 and 1 exactly.
        Assert.Equal(1f, QuantPeft.Quant.CodeTables.DynamicSigned[255]);
        Assert.Equal(0f, QuantPeft.Quant.CodeTables.DynamicSigned[127]);
        using var dir = new TempDir();
        string dense = RecipeTests.WriteTinyModel(dir);
        string folder = dir.File("hand-built");
        var expected = PrequantizedFixtures.HandBuilt(dense, folder, nested);
        var stored = PrequantizedFolder.Read(folder)!;
        Assert.Equal(WeightFormat.Nf4, stored.Weights);
        Assert.Equal(nested, stored.DoubleQuant);

        var spec = ModelFolder.ReadSpec(folder);
        using var model = ModelFolder.Load(folder, spec, new DecoderOptions { LinearFactory = stored.Factory(4, 4, ScalarType.BFloat16) });
        var bases = model.named_modules().Where(m => m.module is QuantizedBaseLinear).ToList();
        Assert.Equal(expected.Count, bases.Count);
        foreach (var (name, module) in bases)
        {
            using var w = ((QuantizedBaseLinear)module).DenseWeight(ScalarType.Float32);
            Assert.Equal(expected[name + ".weight"], w.contiguous().data<float>().ToArray());
        }
        // Tensors that were not quantized load as they are.
        using var dense32 = new SafetensorsModelSource(Path.Combine(dense, ModelFolder.WeightsFileName));
        using var embed = dense32.Get("model.embed_tokens.weight");
        Assert.True(model.named_parameters().First(p => p.name == "model.embed_tokens.weight").parameter.equal(embed.to(ScalarType.BFloat16)).all().item<bool>());
    }

    [Fact]
    public void AQuantizedLmHeadIsDequantizedIntoTheDenseHeadAndUnsupportedQuantizationIsRefusedByName()
    {
        using var dir = new TempDir();
        var untied = new QuantPeft.Formats.HuggingFace.ModelSpec
        {
            ModelType = "llama", NumLayers = 1, HiddenSize = 32, IntermediateSize = 64, NumHeads = 2, NumKvHeads = 2,
            VocabSize = QuantPeft.Trainers.Tokenizers.ByteLevelTokenizer.Size, TieWordEmbeddings = false, MaxPositionEmbeddings = 64,
        };
        string dense = TinyRecipeFiles.WriteModel(untied, dir.File("model"));
        string stored = dir.File("nf4");
        CheckpointQuantizer.Run(dense, stored, new QuantizeOptions(CheckpointFormat.Nf4, 64, doubleQuant: true, quantizeLmHead: true));
        using (var model = ModelFolder.Load(stored, untied, new DecoderOptions { LinearFactory = PrequantizedFolder.Read(stored)!.Factory(4, 4, ScalarType.BFloat16) }))
        using (var checkpoint = QuantizedCheckpoint.Open(stored))
        {
            Assert.Contains("lm_head.weight", checkpoint.QuantizedWeights);
            // The host codec decodes the file independently of the device path the loader takes.
            using var expected = tensor(checkpoint.Dequantize("lm_head.weight"), new long[] { untied.VocabSize, 32 }).to(ScalarType.BFloat16);
            Assert.True(model.LmHeadWeight.equal(expected).all().item<bool>());
        }

        string int8 = dir.File("int8");
        CheckpointQuantizer.Run(dense, int8, new QuantizeOptions(CheckpointFormat.Int8));
        var e = Assert.Throws<ModelException>(() => ModelFolder.Check(int8));
        Assert.Contains(Path.Combine(int8, "config.json"), e.Message);
        Assert.Contains("load_in_8bit", e.Message);
        File.WriteAllText(Path.Combine(int8, "config.json"), File.ReadAllText(Path.Combine(int8, "config.json")).Replace("\"bitsandbytes\"", "\"gptq\""));
        e = Assert.Throws<ModelException>(() => ModelFolder.Check(int8));
        Assert.Contains("quant_method 'gptq'", e.Message);
    }

    [Theory]
    [InlineData("missing absmax")]
    [InlineData("unknown quant_type")]
    [InlineData("shape mismatch")]
    [InlineData("codes without state")]
    public void CorruptTensorsFailTheLoadNamingTheTensorAndTheFile(string corruption)
    {
        using var dir = new TempDir();
        string stored = PrequantizedFixtures.Bitsandbytes(RecipeTests.WriteTinyModel(dir), dir.File("quantized"), CheckpointFormat.Nf4, doubleQuant: true);
        const string Q = "model.layers.1.self_attn.q_proj.weight";
        const string State = Q + ".quant_state.bitsandbytes__nf4";
        PrequantizedFixtures.Edit(stored, t =>
        {
            string json = System.Text.Encoding.UTF8.GetString(t[State].Data);
            switch (corruption)
            {
                case "missing absmax":
                    t.Remove(Q + ".absmax");
                    break;
                case "unknown quant_type":
                    t[State] = PrequantizedFixtures.JsonTensor(json.Replace("\"nf4\"", "\"nf5\""));
                    break;
                case "shape mismatch":
                    // Same element count, so every size in the state agrees; only the dense shape is wrong.
                    t[State] = PrequantizedFixtures.JsonTensor(json.Replace("[32, 32]", "[64, 16]"));
                    break;
                default:
                    foreach (var suffix in new[] { ".absmax", ".quant_map", ".nested_absmax", ".nested_quant_map", ".quant_state.bitsandbytes__nf4" })
                        t.Remove(Q + suffix);
                    break;
            }
        });
        using var recipe = new FinetuneRecipe(RecipeTests.Options(dir, stored, steps: 1));
        var e = Assert.Throws<ModelException>(recipe.Setup);
        Assert.Contains(Q, e.Message);
        Assert.Contains(Path.Combine(stored, "model.safetensors"), e.Message);
        Assert.Contains(corruption switch
        {
            "missing absmax" => "absmax",
            "unknown quant_type" => "nf5",
            "shape mismatch" => "expected shape [32, 32]",
            _ => "no 'model.layers.1.self_attn.q_proj.weight.quant_state.bitsandbytes__nf4'",
        }, e.Message);
    }

    [Fact]
    public void FlagsLeftAtTheirDefaultsTakeTheFolderFormatAndContradictionsNameTheFlagAndTheFormat()
    {
        using var dir = new TempDir();
        string stored = PrequantizedFixtures.Bitsandbytes(RecipeTests.WriteTinyModel(dir), dir.File("fp4"), CheckpointFormat.Fp4, doubleQuant: false);
        var defaults = RecipeTests.Options(dir, stored, steps: 1);
        Assert.Equal((WeightFormat.Nf4, true), (defaults.Weights, defaults.DoubleQuant));
        var aligned = PrequantizedOptions.Align(defaults, new PrequantizedOptions.Given(false, false, false));
        Assert.Equal((WeightFormat.Fp4, false), (aligned.Weights, aligned.DoubleQuant));
        Assert.Equal(WeightFormat.Fp4, PlanOptions.ToStrategy(aligned).Weights);

        var e = Assert.Throws<RecipeException>(() => PrequantizedOptions.Align(defaults with { Weights = WeightFormat.Bf16 }, new PrequantizedOptions.Given(true, false, false)));
        Assert.StartsWith("--weights bf16: MODEL folder", e.Message);
        Assert.Contains("fp4 (bitsandbytes, double quant off)", e.Message);
        e = Assert.Throws<RecipeException>(() => PrequantizedOptions.Align(aligned with { DoubleQuant = true }, new PrequantizedOptions.Given(false, true, false)));
        Assert.StartsWith("--double-quant on:", e.Message);
        foreach (var method in new[] { TrainingMethod.Pissa, TrainingMethod.Osora })
        {
            e = Assert.Throws<RecipeException>(() => PrequantizedOptions.Check(aligned with { Method = method }));
            Assert.Contains("full-precision weight", e.Message);
            Assert.Contains(stored, e.Message);
        }
        // The recipe itself refuses options that contradict the folder, before loading anything.
        using var recipe = new FinetuneRecipe(defaults);
        e = Assert.Throws<RecipeException>(recipe.Setup);
        Assert.StartsWith("--weights nf4", e.Message);
    }
}
