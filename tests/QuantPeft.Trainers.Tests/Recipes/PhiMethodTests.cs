using System.Text.Json;
using QuantPeft.Formats.HuggingFace;
using QuantPeft.Formats.Peft;
using QuantPeft.Memory.Planning;
using QuantPeft.Trainers.Export;
using QuantPeft.Trainers.Model;
using QuantPeft.Trainers.Recipes;
using QuantPeft.Trainers.Tests.Export;
using QuantPeft.Trainers.Tokenizers;
using QuantPeft.Trainers.Training;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Tests.Recipes;

/// <summary>
/// Every adapter method trains a tiny Phi-3 (fused projections, partial rotary, longrope in its long regime, a window shorter
/// than the rows): the loss falls, the adapter file targets the fused names, and the merged folder gives the trained logits.
/// </summary>
public class PhiMethodTests(ITestOutputHelper output)
{
    // Rows of 32 tokens pass the original context of 16, so the long factors and the √(1 + ln 4 / ln 16) scale apply.
    private static readonly ModelSpec TinyPhi = new()
    {
        ModelType = "phi3", NumLayers = 2, HiddenSize = 32, IntermediateSize = 64, NumHeads = 2, NumKvHeads = 1,
        VocabSize = ByteLevelTokenizer.Size, TieWordEmbeddings = true, MaxPositionEmbeddings = 64, RmsNormEps = 1e-5,
        PartialRotaryFactor = 0.5, SlidingWindow = 24,
        RopeScaling = new RopeScaling("longrope", 4.0, OriginalMaxPositionEmbeddings: 16)
        {
            ShortFactor = [1.0, 1.5, 2.0, 3.0], LongFactor = [1.0, 2.0, 4.0, 8.0],
        },
    };

    [Theory]
    [InlineData(TrainingMethod.Lora, 5e-2)]
    [InlineData(TrainingMethod.Dora, 5e-2)]
    [InlineData(TrainingMethod.Vera, 2e-1)]
    [InlineData(TrainingMethod.Pissa, 5e-2)]
    [InlineData(TrainingMethod.Osora, 2e-1)]
    [InlineData(TrainingMethod.RandLora, 3e-2)]
    public void Method_TrainsTheFusedProjections_AndMergesToTheTrainedLogits(TrainingMethod method, double lr)
    {
        using var dir = new TempDir();
        string model = TinyRecipeFiles.WriteModel(TinyPhi, dir.File("model"));
        var options = RecipeTests.Options(dir, model, steps: 12, trainRecords: 16) with
        {
            Method = method, Weights = WeightFormat.Bf16, Rank = 4, Alpha = 8, LearningRate = lr,
        };
        string adapter = dir.File("adapter"), merged = dir.File("merged"), metrics = dir.File("metrics.jsonl");
        Tensor trained;
        using (var recipe = new FinetuneRecipe(options))
        {
            recipe.Setup();
            Assert.Equal(2 * 4, recipe.Adapters.Count);
            Assert.Contains(recipe.Adapters, a => a.ModulePath == "model.layers.1.self_attn.qkv_proj");
            if (method is TrainingMethod.Lora or TrainingMethod.Dora)
            {
                // The planner prices what the runtime trains: one A per fused projection.
                var strategy = new Strategy
                {
                    Weights = WeightFormat.Bf16, Method = method, Rank = 4, Targets = TargetModules.AllLinear,
                    Optimizer = OptimizerKind.AdamW, Batch = 1, ChunkedLoss = true,
                };
                var planned = QuantPeft.Memory.CostModel.TrainableSet.Build(QuantPeft.Memory.CostModel.ModelInventory.Build(TinyPhi), strategy);
                Assert.Equal(planned.AdapterElements, recipe.TrainableParameters);
            }
            if (method is TrainingMethod.RandLora)
            {
                // One layer per fused projection, its n·(r + min) priced on the first part; the bases sized by the fused widths.
                var strategy = new Strategy
                {
                    Weights = WeightFormat.Bf16, Method = method, Rank = 4, Targets = TargetModules.AllLinear,
                    Optimizer = OptimizerKind.AdamW, Batch = 1, ChunkedLoss = true,
                };
                var planned = QuantPeft.Memory.CostModel.TrainableSet.Build(QuantPeft.Memory.CostModel.ModelInventory.Build(TinyPhi), strategy);
                var bases = ((QuantPeft.Trainers.Adapters.RandLoraLinear)recipe.Adapters[0].Layer).SharedBases;
                Assert.Equal(planned.TrainableElements, recipe.TrainableParameters);
                Assert.Equal(planned.AdapterElements, recipe.TrainableParameters + bases.A.numel() + bases.B.numel());
            }
            using (var log = new MetricsWriter(metrics)) recipe.Train(log);
            recipe.Save(adapter);
            trained = TrainedAdapterMergeTests.Logits(recipe.Model).DetachFromDisposeScope();
        }
        using var owned = trained;
        var losses = File.ReadLines(metrics).Select(l => JsonDocument.Parse(l).RootElement)
            .Where(e => e.TryGetProperty("loss", out _)).Select(e => e.GetProperty("loss").GetDouble()).ToList();
        Assert.Equal(12, losses.Count);
        Assert.All(losses, l => Assert.True(double.IsFinite(l)));
        output.WriteLine($"{method}: loss {losses[0]:F4} -> {losses[^1]:F4}");
        Assert.True(losses.Skip(9).Average() < losses.Take(3).Average() - 0.1, $"{method}: first {losses.Take(3).Average()}, last {losses.Skip(9).Average()}");

        using (var file = QuantPeft.Formats.Safetensors.SafetensorsFile.Open(Path.Combine(adapter, PeftAdapter.WeightsFileName)))
        {
            var layerTensors = file.Tensors.Where(t => t.Name.Contains(".layers.", StringComparison.Ordinal)).ToList();
            Assert.NotEmpty(layerTensors);
            Assert.All(layerTensors, t => Assert.Matches(@"\.(qkv_proj|o_proj|gate_up_proj|down_proj)\.", t.Name));
        }
        var result = MergedModelExport.Merge(adapter, model, merged, maxShardBytes: 1L << 30);
        Assert.Equal(2 * 4, result.MergedModules);
        var mergedSpec = ModelFolder.ReadSpec(merged);
        Assert.Equal(TinyPhi, mergedSpec);
        using var mergedModel = ModelFolder.Load(merged, mergedSpec, new DecoderOptions { ComputeDType = ScalarType.BFloat16 });
        using var actual = TrainedAdapterMergeTests.Logits(mergedModel);
        // The bound of TrainedAdapterMergeTests: the merged weights round W + ΔW to bf16 once, within 3 bf16 ulps of the
        // largest logit at most.
        float scale = trained.abs().max().item<float>();
        float ulp = MathF.Pow(2, MathF.Floor(MathF.Log2(scale)) - 7);
        float error = (actual - trained).abs().max().item<float>();
        output.WriteLine($"{method}: merged vs trained max diff {error} (bf16 ulp {ulp})");
        Assert.True(error <= 3 * ulp, $"{method}: merged vs trained max diff {error} (bf16 ulp {ulp})");
    }

    [Fact]
    public void Loram_PrunesTheFusedGateUp_AndRecoversItsRowsInBothHalves()
    {
        using var dir = new TempDir();
        string model = TinyRecipeFiles.WriteModel(TinyPhi, dir.File("model"));
        var options = RecipeTests.Options(dir, model, steps: 8, trainRecords: 16) with
        {
            Method = TrainingMethod.Loram, Prune = 0.5, Weights = WeightFormat.Bf16, Rank = 4, Alpha = 8,
        };
        string adapter = dir.File("adapter"), metrics = dir.File("metrics.jsonl");
        using (var recipe = new FinetuneRecipe(options))
        {
            recipe.Setup();
            // Half of the 64 channels kept: gate_up_proj trains on 2 · 32 rows; the single kv head stays.
            Assert.Equal(new LayerDims(2, 1, 32), recipe.Model.DimsOf(0));
            var a = recipe.Adapters.Single(x => x.ModulePath == "model.layers.0.mlp.gate_up_proj").Layer.AdapterTensors();
            Assert.Equal([64L, 4L], a["lora_B.weight"].shape);
            using (var log = new MetricsWriter(metrics)) recipe.Train(log);
            recipe.Save(adapter);
        }
        var losses = File.ReadLines(metrics).Select(l => JsonDocument.Parse(l).RootElement)
            .Where(e => e.TryGetProperty("loss", out _)).Select(e => e.GetProperty("loss").GetDouble()).ToList();
        Assert.True(losses.Skip(5).Average() < losses.Take(3).Average(), $"first {losses.Take(3).Average()}, last {losses.Skip(5).Average()}");
        using var file = QuantPeft.Formats.Safetensors.SafetensorsFile.Open(Path.Combine(adapter, PeftAdapter.WeightsFileName));
        float[] b = file.ReadFloat32("base_model.model.model.layers.0.mlp.gate_up_proj.lora_B.weight");
        Assert.Equal(128 * 4, b.Length);   // recovered to the full [2 · 64, r]
        bool RowZero(int row) => Enumerable.Range(0, 4).All(k => b[row * 4 + k] == 0f);
        int zeroRows = Enumerable.Range(0, 128).Count(RowZero);
        Assert.Equal(64, zeroRows);                                           // the 32 pruned channels, in both halves
        Assert.All(Enumerable.Range(0, 64), c => Assert.Equal(RowZero(c), RowZero(64 + c)));
    }
}
