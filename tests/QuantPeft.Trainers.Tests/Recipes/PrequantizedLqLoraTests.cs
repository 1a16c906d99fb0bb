using System.Text.Json;
using QuantPeft.Formats.HuggingFace;
using QuantPeft.Memory.Planning;
using QuantPeft.Quant.Checkpoints;
using QuantPeft.Quant.LqLora;
using QuantPeft.Trainers.Adapters;
using QuantPeft.Trainers.Model;
using QuantPeft.Trainers.Recipes;
using QuantPeft.Trainers.Tokenizers;
using QuantPeft.Trainers.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Tests.Recipes;

public class PrequantizedLqLoraTests
{
    // Wide enough that every projection holds a multiple of B0·B1 = 16·256 weights, the smallest LQ-LoRA checkpoint group.
    private static readonly ModelSpec Spec = new()
    {
        ModelType = "llama", NumLayers = 1, HiddenSize = 64, IntermediateSize = 64, NumHeads = 2, NumKvHeads = 2,
        VocabSize = ByteLevelTokenizer.Size, TieWordEmbeddings = true, MaxPositionEmbeddings = 64,
    };

    private const int Rank = 4;

    // `qpeft quantize MODEL --method lq-lora --bits 3 --rank 4 --blocksize 16 --iterations 4`.
    private static string WriteLqLoraFolder(TempDir dir)
    {
        string dense = TinyRecipeFiles.WriteModel(Spec, dir.File("model"));
        string stored = dir.File("lq-lora");
        LqLoraCheckpointWriter.Run(dense, stored, new LqLoraOptions(3, Rank, blockSize: 16, maxIterations: 4));
        return stored;
    }

    private static FinetuneOptions Options(TempDir dir, string stored, int steps) =>
        RecipeTests.Options(dir, stored, steps, trainRecords: 16) with { Weights = WeightFormat.LqLora, LqLoraBits = 3, Rank = Rank };

    [Fact]
    public void TheBasesHoldTheStoredQCodeForCodeAndTheLorasStartAtTheStoredFactors()
    {
        using var dir = new TempDir();
        string stored = WriteLqLoraFolder(dir);
        var options = Options(dir, stored, steps: 1);
        using var recipe = new FinetuneRecipe(options);
        recipe.Setup();
        Assert.Equal(7, recipe.Adapters.Count);
        double s = options.Alpha / options.Rank;
        using (var checkpoint = LqLoraCheckpoint.Open(stored))
        {
            foreach (var adapter in recipe.Adapters)
            {
                var lora = (LoraLinear)adapter.Layer;
                var lq = (LqLoraBaseLinear)lora.BaseLayer;
                using var p = checkpoint.Read(adapter.ModulePath + ".weight");
                Assert.Equal(checkpoint.Configs[adapter.ModulePath + ".weight"], lq.Config);
                using var q = p.Quantized.Dequantize();
                using var decoded = lq.DenseWeight(ScalarType.Float32);
                Assert.True(decoded.equal(q).all().item<bool>(), adapter.ModulePath);
                using var start = lora.B.detach().matmul(lora.A.detach()).mul(s);
                using var l1l2 = p.L1.to(ScalarType.Float32).matmul(p.L2.to(ScalarType.Float32));
                Assert.True(start.allclose(l1l2, rtol: 1e-5, atol: 1e-6), adapter.ModulePath);
            }
        }
        // The function at the start is the one the checkpoint stands for, Q + L1·L2: a dense model loaded with those weights
        // gives the same logits up to bf16 rounding (the adapter adds s·B·A·x to Q·x instead of multiplying by one rounded
        // sum, so they cannot be bitwise equal), far closer than Q alone is.
        using var ids = tensor(new long[] { 256, 117, 112, 112, 101, 114, 58, 32, 97, 98 }, [1, 10]);
        using var dense = ModelFolder.Load(stored, Spec, new DecoderOptions { LinearFactory = LinearFactories.Plain(ScalarType.BFloat16) });
        using var qOnly = ModelFolder.Load(stored, Spec, new DecoderOptions { LinearFactory = PrequantizedFolder.Read(stored)!.Factory(Rank, s, ScalarType.BFloat16) });
        using (no_grad())
        {
            using var expected = dense.forward(ids).to(ScalarType.Float32);
            using var actual = recipe.Model.forward(ids).to(ScalarType.Float32);
            using var baseline = qOnly.forward(ids).to(ScalarType.Float32);
            double gap = (actual - expected).abs().max().item<float>(), qGap = (baseline - expected).abs().max().item<float>();
            Assert.True(gap < 0.2 * qGap, $"adapter start vs Q + L1·L2: {gap}; Q alone: {qGap}");
        }
    }

    [Fact]
    public void ShortRunOnAnLqLoraFolderLowersTheLossByAWideMargin()
    {
        using var dir = new TempDir();
        string stored = WriteLqLoraFolder(dir);
        using var recipe = new FinetuneRecipe(Options(dir, stored, steps: 12));
        recipe.Setup();
        using (var log = new MetricsWriter(dir.File("metrics.jsonl"))) recipe.Train(log);
        var losses = File.ReadLines(dir.File("metrics.jsonl")).Select(l => JsonDocument.Parse(l).RootElement)
            .Where(e => e.TryGetProperty("loss", out _)).Select(e => e.GetProperty("loss").GetDouble()).ToList();
        Assert.True(losses.Skip(9).Average() < losses.Take(3).Average() - 1.0, string.Join(" ", losses.Select(l => l.ToString("F3"))));
    }

    [Fact]
    public void TheFolderDecidesFormatRankAndTargetsAndAMissingFactorNamesTheTensorAndTheFile()
    {
        using var dir = new TempDir();
        string stored = WriteLqLoraFolder(dir);
        var folder = PrequantizedFolder.Read(stored)!;
        Assert.Equal((WeightFormat.LqLora, 3.0, Rank), (folder.Weights, folder.LqLoraBudget, folder.LqLoraRank));
        Assert.True(folder.LqLoraBits <= 3.0);

        var defaults = RecipeTests.Options(dir, stored, steps: 1) with { Rank = 8 };
        var aligned = PrequantizedOptions.Align(defaults, new PrequantizedOptions.Given(false, false, false));
        Assert.Equal((WeightFormat.LqLora, folder.LqLoraBits, Rank), (aligned.Weights, aligned.LqLoraBits, aligned.Rank));
        // The plan prices what is stored: the average the allocator reached, not the budget asked for.
        Assert.Equal(folder.LqLoraBits, PlanOptions.ToStrategy(aligned).LqLoraBits);
        // The budget the folder was written for also agrees with it.
        PrequantizedOptions.Check(aligned with { LqLoraBits = 3 });

        var e = Assert.Throws<RecipeException>(() => PrequantizedOptions.Align(defaults, new PrequantizedOptions.Given(false, false, true)));
        Assert.StartsWith("--rank 8:", e.Message);
        e = Assert.Throws<RecipeException>(() => PrequantizedOptions.Check(aligned with { Targets = ["q,v"] }));
        Assert.StartsWith("--targets q,v:", e.Message);
        e = Assert.Throws<RecipeException>(() => PrequantizedOptions.Check(aligned with { Weights = WeightFormat.Nf4 }));
        Assert.StartsWith("--weights nf4:", e.Message);
        Assert.Contains("lq-lora (average", e.Message);
        e = Assert.Throws<RecipeException>(() => PrequantizedOptions.Check(aligned with { Method = TrainingMethod.Dora }));
        Assert.StartsWith("--method dora:", e.Message);

        const string Down = "model.layers.0.mlp.down_proj";
        PrequantizedFixtures.Edit(stored, t => t.Remove(Down + ".lq_lora.L1"));
        using var recipe = new FinetuneRecipe(aligned);
        var m = Assert.Throws<ModelException>(recipe.Setup);
        Assert.Contains(Down + ".weight", m.Message);
        Assert.Contains(Path.Combine(stored, "model.safetensors"), m.Message);
        Assert.Contains("lq_lora.L1", m.Message);
    }

    [Theory]
    [InlineData(8, SecondLevelStorage.Float32)]
    [InlineData(3, SecondLevelStorage.BFloat16)]
    [InlineData(2, SecondLevelStorage.Float16)]
    public void StoredCodesConvertToTheSlabDecodedFormLosslessly(int bits, SecondLevelStorage secondLevel)
    {
        var config = new LqQuantConfig(bits, 8, secondLevel, 16, 16);
        using var gen = new Generator(5);
        using var w = randn(new long[] { 32, 48 }, generator: gen);
        using var codes = LqQuantizer.Quantize(w, config);
        using var matrix = LqQuantizedMatrix.FromCodes(codes);
        using var expected = codes.Dequantize();
        using var all = matrix.Dequantize();
        Assert.True(all.equal(expected).all().item<bool>());
        // Slab decoding (what forward and backward use) agrees too.
        long rows = matrix.RowAlignment;
        using var slab = empty(new long[] { rows, 48 });
        matrix.DecodeRows(rows, rows, slab);
        using (var part = expected.narrow(0, rows, rows)) Assert.True(slab.equal(part).all().item<bool>());
    }
}
