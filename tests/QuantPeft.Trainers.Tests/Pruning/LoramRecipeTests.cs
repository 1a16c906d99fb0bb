using System.Text.Json;
using QuantPeft.Formats.HuggingFace;
using QuantPeft.Memory.Planning;
using QuantPeft.Trainers.Data;
using QuantPeft.Trainers.Data.Demo;
using QuantPeft.Trainers.Model;
using QuantPeft.Trainers.Pruning;
using QuantPeft.Trainers.Recipes;
using QuantPeft.Trainers.Tokenizers;
using QuantPeft.Trainers.Training;
using TorchSharp;
using QuantPeft.Trainers.Tests.Recipes;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Tests.Pruning;

public class LoramRecipeTests
{
    // Two blocks (too shallow for the 4 + 2 whole blocks, so both are pruned), 2 heads of 16, 64 channels.
    private static readonly ModelSpec Tiny = new()
    {
        ModelType = "llama", NumLayers = 2, HiddenSize = 32, IntermediateSize = 64, NumHeads = 2, NumKvHeads = 2,
        VocabSize = ByteLevelTokenizer.Size, TieWordEmbeddings = true, MaxPositionEmbeddings = 64,
    };

    private static FinetuneOptions Options(TempDir dir)
    {
        TinyRecipeFiles.WriteModel(Tiny, dir.File("model"));
        // 16 records = one micro-batch: every step sees the same rows, so the loss falls by a wide margin on any CPU.
        TinyRecipeFiles.WriteTask(dir, 16, 32);
        return new FinetuneOptions
        {
            ModelFolder = dir.File("model"), DataPath = dir.File("train.jsonl"), EvalPath = dir.File("eval.jsonl"), Steps = 20, Rank = 4,
            LearningRate = 5e-2, MicroBatchSize = 16, SequenceLength = 32, EvalEvery = 0, ExactMatchRecords = 0, Seed = 7,
            Method = TrainingMethod.Loram, Prune = 0.5, Weights = WeightFormat.Nf4,
        };
    }

    [Fact]
    public void QloramTrainsThePrunedModel_AndSavesAnAdapterForTheUnprunedOne()
    {
        using var dir = new TempDir();
        var options = Options(dir);
        using (var recipe = new FinetuneRecipe(options))
        {
            recipe.Setup();
            // LoRA r=4 on the pruned shapes: q, k, v, o 32↔16; gate, up, down 32↔32.
            Assert.Equal(2 * 4 * (4 * (32 + 16) + 3 * (32 + 32)), recipe.TrainableParameters);
            using (var log = new MetricsWriter(dir.File("metrics.jsonl"))) recipe.Train(log);
            var losses = File.ReadLines(dir.File("metrics.jsonl")).Select(l => JsonDocument.Parse(l).RootElement)
                .Where(e => e.TryGetProperty("loss", out _)).Select(e => e.GetProperty("loss").GetDouble()).ToList();
            Assert.True(losses.Skip(15).Average() < losses.Take(5).Average() - 1.0, $"first {losses.Take(5).Average()}, last {losses.Skip(15).Average()}");
            recipe.Save(dir.File("adapter"));
            recipe.Pruning!.Save(dir.File(PruningPlan.FileName));
            Assert.Equal(Tiny.ParameterCount - 2 * (2 * 16 * 32 + 2 * 16 * 32 + 3 * 32 * 32), recipe.Pruning.KeptParameterCount());
        }

        using (var adapter = Formats.Peft.PeftAdapter.Load(dir.File("adapter")))
        {
            var q = adapter.Weights.GetTensor("base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight");
            var down = adapter.Weights.GetTensor("base_model.model.model.layers.1.mlp.down_proj.lora_A.weight");
            Assert.Equal([32, 4], q.Shape);
            Assert.Equal([4, 64], down.Shape);
        }
        using var plan = JsonDocument.Parse(File.ReadAllText(dir.File(PruningPlan.FileName)));
        var layer0 = plan.RootElement.GetProperty("layers")[0];
        Assert.Single(layer0.GetProperty("kept_kv_heads").EnumerateArray());
        Assert.Equal(32, layer0.GetProperty("kept_channels").GetArrayLength());

        // The recovered adapter loads into the unpruned model (every name and shape checked).
        using var full = new FinetuneRecipe(options with { Method = TrainingMethod.Lora, Prune = 0 });
        full.Setup();
        full.LoadAdapter(dir.File("adapter"));
    }

    [Fact]
    public void LoramOptionsAreCheckedWithTheFlagNamed()
    {
        using var dir = new TempDir();
        var options = Options(dir);
        Assert.StartsWith("--prune: expected a ratio in (0, 1), found 1.5", Assert.Throws<RecipeException>(() => new FinetuneRecipe(options with { Prune = 1.5 })).Message);
        Assert.StartsWith("--prune: --method loram needs a pruning ratio", Assert.Throws<RecipeException>(() => new FinetuneRecipe(options with { Prune = 0 })).Message);
        Assert.StartsWith("--prune-criterion: expected one of random, magnitude", Assert.Throws<RecipeException>(() => new FinetuneRecipe(options with { PruneCriterion = "taylor" })).Message);
        Assert.StartsWith("--prune: only applies to --method loram", Assert.Throws<RecipeException>(() => new FinetuneRecipe(options with { Method = TrainingMethod.Lora })).Message);
        // ⌊0.01·64⌋ = 0: a ratio of 0.99 leaves no MLP channel.
        using var recipe = new FinetuneRecipe(options with { Prune = 0.99 });
        Assert.Contains("leaves none of the 64 MLP channels", Assert.Throws<PruningException>(recipe.Setup).Message);
    }
}
