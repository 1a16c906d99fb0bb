using QuantPeft.Memory.Planning;
using QuantPeft.Trainers.Adapters;
using QuantPeft.Trainers.Data.Demo;
using QuantPeft.Trainers.Export;
using QuantPeft.Trainers.Generation;
using QuantPeft.Trainers.Recipes;
using QuantPeft.Trainers.Tests.Recipes;
using QuantPeft.Trainers.Training;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Tests.Generation;

/// <summary>
/// <c>qpeft generate --weights lq-lora:BITS --adapter RUN</c> against the model the LQ-LoRA run trained: the rebuilt base and
/// the exported adapter give that model's logits and its greedy continuation, which the original weights plus the same
/// adapter do not.
/// </summary>
public class LqLoraGenerationTests(Xunit.Abstractions.ITestOutputHelper output)
{
    [Fact]
    public void GenerateOnAnLqLoraRunGivesTheTrainedModelsLogitsAndGreedyContinuation()
    {
        using var dir = new TempDir();
        string model = RecipeTests.WriteTinyModel(dir);
        var options = RecipeTests.Options(dir, model, steps: 12, trainRecords: 16) with { Weights = WeightFormat.LqLora, LqLoraBits = 3 };
        string adapter = dir.File("adapter");
        string word = UpperCaseTask.Generate(5, 16, 32).Train[0].Prompt!;   // the records RecipeTests.Options trains on
        int[] prompt = [256, .. System.Text.Encoding.UTF8.GetBytes(word).Select(b => (int)b)];
        long[] probe = [.. prompt.Select(i => (long)i)];
        int[] trainedGreedy, trainedSampled;
        // Sampling at temperature 1 (a fixed seed) follows the logits at every step, so it tells models apart where the
        // trained model's greedy answer is an early end-of-text repeated.
        var sampling = new SamplingOptions(Temperature: 1, Seed: 3);
        Tensor trainedLogits;
        using (var recipe = new FinetuneRecipe(options))
        {
            recipe.Setup();
            using (var log = new MetricsWriter(dir.File("metrics.jsonl"))) recipe.Train(log);
            recipe.Save(adapter);
            recipe.Model.eval();
            using (no_grad())
            {
                trainedGreedy = GreedyDecoder.Generate(recipe.Model, [prompt], 12, eos: null, vocabSize: 259)[0];
                trainedLogits = recipe.Model.forward(tensor(probe, [1, probe.Length])).to(ScalarType.Float32).detach();
            }
            using var trainedGenerator = new TextGenerator(recipe.Model, 259);
            trainedSampled = trainedGenerator.Generate(prompt, 24, sampling, new HashSet<int>()).Tokens.ToArray();
        }
        output.WriteLine($"trained: greedy {string.Join(" ", trainedGreedy)}; sampled {string.Join(" ", trainedSampled)}");
        Assert.True(trainedSampled.Distinct().Count() > 5, "the sampled continuation repeats a few tokens; the comparison would prove little");
        using (trainedLogits)
        {
            // In the training dtype the rebuilt model is the trained one: the same Q, the same factors.
            using (var rebuilt = GenerationModel.Load(model, adapter, WeightFormat.Bf16, ScalarType.BFloat16, lqLoraBits: 3))
            using (no_grad())
            {
                using var logits = rebuilt.Model.forward(tensor(probe, [1, probe.Length])).to(ScalarType.Float32);
                float diff = logits.sub(trainedLogits).abs().max().item<float>();
                output.WriteLine($"rebuilt vs trained: max |Δ logit| {diff}; greedy {string.Join(" ", trainedGreedy)}");
                Assert.True(diff < 1e-3f, $"rebuilt vs trained logits differ by {diff}");
                using var generator = new TextGenerator(rebuilt.Model, 259);
                Assert.Equal(trainedGreedy, generator.Generate(prompt, 12, new SamplingOptions(), new HashSet<int>()).Tokens);
                generator.Reset();
                Assert.Equal(trainedSampled, generator.Generate(prompt, 24, sampling, new HashSet<int>()).Tokens);
            }
            // As the CLI runs it (float32 activations): the same greedy continuation.
            using (var cli = GenerationModel.Load(model, adapter, WeightFormat.Bf16, ScalarType.Float32, lqLoraBits: 3))
            using (var generator = new TextGenerator(cli.Model, 259))
                Assert.Equal(trainedGreedy, generator.Generate(prompt, 12, new SamplingOptions(), new HashSet<int>()).Tokens);
            // The original weights with the same (rank-2r) adapter are another model: the base is what makes the difference.
            using (var original = GenerationModel.Load(model, adapter, WeightFormat.Bf16, ScalarType.BFloat16))
            using (no_grad())
            {
                using var logits = original.Model.forward(tensor(probe, [1, probe.Length])).to(ScalarType.Float32);
                float diff = logits.sub(trainedLogits).abs().max().item<float>();
                output.WriteLine($"original base + adapter vs trained: max |Δ logit| {diff}");
                Assert.True(diff > 1e-2f, $"the original base gives the trained logits within {diff}; the test cannot tell the bases apart");
            }
        }
        // Another budget is another base: the adapter's start factors do not match it, and the load says so.
        var e = Assert.Throws<ExportException>(() => GenerationModel.Load(model, adapter, WeightFormat.Bf16, ScalarType.Float32, lqLoraBits: 4));
        Assert.Contains("lq-lora:4", e.Message);
    }
}
