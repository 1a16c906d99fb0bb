using System.Text.Json;
using QuantPeft.Formats.HuggingFace;
using QuantPeft.Memory.Planning;
using QuantPeft.Trainers.Data;
using QuantPeft.Trainers.Data.Demo;
using QuantPeft.Trainers.Model;
using QuantPeft.Trainers.Recipes;
using QuantPeft.Trainers.Tokenizers;
using QuantPeft.Trainers.Training;
using QuantPeft.Trainers.Tests.Recipes;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Tests.Strategies;

public class StrategyRecipeTests
{
    private static readonly ModelSpec Tiny = new()
    {
        ModelType = "llama", NumLayers = 4, HiddenSize = 32, IntermediateSize = 64, NumHeads = 2, NumKvHeads = 2,
        VocabSize = ByteLevelTokenizer.Size, TieWordEmbeddings = true, MaxPositionEmbeddings = 64,
    };

    private static FinetuneOptions Options(TempDir dir)
    {
        TinyRecipeFiles.WriteModel(Tiny, dir.File("model"));
        // 16 records = one micro-batch: every step sees the same rows, so the loss falls far within 20 steps.
        TinyRecipeFiles.WriteTask(dir, 16, 16);
        return new FinetuneOptions
        {
            ModelFolder = dir.File("model"), DataPath = dir.File("train.jsonl"), EvalPath = dir.File("eval.jsonl"), Weights = WeightFormat.Bf16,
            Steps = 20, Rank = 4, LearningRate = 1e-2, MicroBatchSize = 16, SequenceLength = 32, EvalEvery = 0, ExactMatchRecords = 0, Seed = 7,
        };
    }

    private static List<double> Train(FinetuneRecipe recipe, TempDir dir)
    {
        string path = dir.File("metrics.jsonl");
        using (var log = new MetricsWriter(path)) recipe.Train(log);
        return File.ReadLines(path).Select(l => JsonDocument.Parse(l).RootElement)
            .Where(e => e.TryGetProperty("loss", out _)).Select(e => e.GetProperty("loss").GetDouble()).ToList();
    }

    [Theory]
    [InlineData(TrainingMethod.Full, "adamw", false)]
    [InlineData(TrainingMethod.Full, "adamw-8bit", true)]
    [InlineData(TrainingMethod.Galore, "galore", false)]
    [InlineData(TrainingMethod.NaturalGalore, "natural-galore", true)]
    public void FullParameterMethodsDriveTheLossDownAndSaveAModelThatReloads(TrainingMethod method, string optimizer, bool layerwise)
    {
        using var dir = new TempDir();
        var options = Options(dir) with { Method = method, Optimizer = Knob.ParseOptimizer(optimizer), Layerwise = layerwise };
        using var recipe = new FinetuneRecipe(options);
        recipe.Setup();
        Assert.Equal(Tiny.ParameterCount, recipe.TrainableParameters);
        var losses = Train(recipe, dir);
        Assert.True(losses.Skip(15).Average() < losses.Take(5).Average() - 1.0, string.Join(", ", losses));
        recipe.Save(dir.File("saved"));
        var after = recipe.Evaluate(exactMatch: false);
        using var reloaded = new FinetuneRecipe(options with { ModelFolder = dir.File("saved") });
        reloaded.Setup();
        Assert.Equal(after.Loss, reloaded.Evaluate(exactMatch: false).Loss, 6);
    }

    [Fact]
    public void LisaTrainsTheSampledLayersOfEachPeriodAndItsLossFalls()
    {
        using var dir = new TempDir();
        var options = Options(dir) with { Method = TrainingMethod.Lisa, LisaLayers = 1, LisaInterval = 5 };
        using var recipe = new FinetuneRecipe(options);
        recipe.Setup();
        var lisa = recipe.Lisa!;
        Assert.Equal(lisa.Sampler.Draw(0), lisa.ActiveLayers);
        var losses = Train(recipe, dir);
        Assert.Equal(lisa.Sampler.Draw(3), lisa.ActiveLayers);
        Assert.True(losses.Skip(15).Average() < losses.Take(5).Average() - 1.0, string.Join(", ", losses));
        // Embedding (tied head) + final norm + one layer of fp32 m and v.
        long layer = 4 * 32 * 32 + 3 * 32 * 64 + 2 * 32;
        Assert.Equal(8 * (Tiny.VocabSize * 32 + 32 + layer), recipe.CurrentOptimizer.StateBytes.Total);
    }
}
