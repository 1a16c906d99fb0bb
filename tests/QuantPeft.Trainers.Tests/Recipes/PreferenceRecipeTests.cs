using QuantPeft.Memory.Planning;
using QuantPeft.Trainers.Data;
using QuantPeft.Trainers.Data.Demo;
using QuantPeft.Trainers.Recipes;
using QuantPeft.Trainers.Training;

namespace QuantPeft.Trainers.Tests.Recipes;

// Not beside other tests: a competing thread can change how libtorch splits a bf16 reduction, and the checkpointing
// comparison below compares two runs made one after the other (see ExactReplay).
[Collection(nameof(ExactReplay))]
public class PreferenceRecipeTests
{
    // Upper-casing pairs (seed 5): chosen is the word in capitals, rejected the word as given, so the rule is the same
    // for every pair and held-out words are disjoint from the trained ones.
    private static (string Train, string Eval) WritePairs(TempDir dir, int train, int eval)
    {
        var (t, e) = UpperCaseTask.Generate(5, train, eval);
        PreferenceRecord Pair(DatasetRecord r) => PreferenceRecord.FromPrompt(r.Prompt!, r.Completion!, r.Completion!.ToLowerInvariant());
        string trainPath = dir.File("pairs-train.jsonl"), evalPath = dir.File("pairs-eval.jsonl");
        PreferenceDatasetWriter.Write(trainPath, t.Select(Pair));
        PreferenceDatasetWriter.Write(evalPath, e.Select(Pair));
        return (trainPath, evalPath);
    }

    private static FinetuneOptions Options(TempDir dir, string model, int steps, PreferenceOptions preference, int train = 64, int eval = 32)
    {
        var (trainPath, evalPath) = WritePairs(dir, train, eval);
        return new FinetuneOptions
        {
            ModelFolder = model, DataPath = trainPath, EvalPath = evalPath, Steps = steps, Rank = 4, LearningRate = 2e-2,
            MicroBatchSize = 8, SequenceLength = 32, EvalEvery = 0, ExactMatchRecords = 0, Seed = 7, Preference = preference,
        };
    }

    private static List<TrainMetrics> Train(FinetuneRecipe recipe, string folder)
    {
        string path = Path.Combine(folder, "metrics.jsonl");
        using (var log = new MetricsWriter(path)) recipe.Train(log);
        return [.. MetricsLog.Read(path).Train];
    }

    [Theory]
    [InlineData(TrainingMethod.Lora, false, ReferenceSource.AdaptersOff)]
    [InlineData(TrainingMethod.Lora, true, ReferenceSource.Cache)]
    [InlineData(TrainingMethod.Vera, false, ReferenceSource.AdaptersOff)]
    [InlineData(TrainingMethod.Pissa, false, ReferenceSource.Cache)]
    public void DpoFirstStepLossIsLn2AndTheEvalBeforeTrainingHasZeroRewards(TrainingMethod method, bool cache, ReferenceSource source)
    {
        using var dir = new TempDir();
        string model = RecipeTests.WriteTinyModel(dir);
        var options = Options(dir, model, 2, new PreferenceOptions { Beta = 0.1, CacheReference = cache }) with { Method = method };
        using var recipe = new FinetuneRecipe(options);
        recipe.Setup();
        Assert.Equal(source, recipe.Preference!.Reference);
        var before = recipe.Evaluate();
        Assert.Equal(Math.Log(2), before.Loss, 6);
        Assert.Equal(0, before.Preference!.Margin, 6);
        var steps = Train(recipe, dir.Path);
        // Step 1's loss is computed before any update: the policy is the reference, so every pair's loss is ln 2.
        Assert.Equal(Math.Log(2), steps[0].Loss, 6);
        Assert.Equal(0, steps[0].Preference!.Accuracy);
        Assert.NotEqual(Math.Log(2), steps[1].Loss, 4);
    }

    [Fact]
    public void DpoWithCheckpointingOnATinyBaseGivesTheSameLossesAsWithout()
    {
        using var dir = new TempDir();
        string model = RecipeTests.WriteTinyModel(dir);
        var options = Options(dir, model, 3, new PreferenceOptions { Beta = 0.5 });
        double[] Losses(bool checkpointing, string sub)
        {
            Directory.CreateDirectory(Path.Combine(dir.Path, sub));
            using var recipe = new FinetuneRecipe(options with { Checkpointing = checkpointing });
            recipe.Setup();
            return [.. Train(recipe, Path.Combine(dir.Path, sub)).Select(m => m.Loss)];
        }
        var plain = Losses(false, "a");
        var recomputed = Losses(true, "b");
        for (int i = 0; i < plain.Length; i++)
            Assert.True(Math.Abs(plain[i] - recomputed[i]) <= 1e-4 * Math.Abs(plain[i]), $"step {i + 1}: {plain[i]:R} vs {recomputed[i]:R}");
    }

    [Fact]
    public void HeldOutRewardAccuracyRisesAboveNinetyPercentOnALearnableRule()
    {
        using var dir = new TempDir();
        string model = RecipeTests.WriteTinyModel(dir);
        var options = Options(dir, model, 40, new PreferenceOptions { Beta = 0.5 }, train: 128, eval: 64) with { EvalEvery = 10 };
        using var recipe = new FinetuneRecipe(options);
        recipe.Setup();
        var before = recipe.Evaluate();
        Train(recipe, dir.Path);
        var after = recipe.Evaluate();
        Assert.Equal(0, before.Preference!.Accuracy);   // every pair ties before training
        Assert.True(after.Preference!.Accuracy > 0.9, $"held-out accuracy {after.Preference.Accuracy:P1}");
        Assert.True(after.Preference.Margin > 0);
        Assert.True(after.Loss < Math.Log(2));
    }

    [Fact]
    public void OrpoTrainsWithoutAReferenceAndLowersItsLoss()
    {
        using var dir = new TempDir();
        string model = RecipeTests.WriteTinyModel(dir);
        var options = Options(dir, model, 10, new PreferenceOptions { Task = TrainingTask.Orpo, OrpoLambda = 0.5 });
        using var recipe = new FinetuneRecipe(options);
        recipe.Setup();
        Assert.Equal(ReferenceSource.None, recipe.Preference!.Reference);
        var before = recipe.Evaluate();
        Train(recipe, dir.Path);
        var after = recipe.Evaluate();
        Assert.True(after.Loss < before.Loss, $"{before.Loss} -> {after.Loss}");
        Assert.True(after.Preference!.Accuracy > before.Preference!.Accuracy);
    }
}
