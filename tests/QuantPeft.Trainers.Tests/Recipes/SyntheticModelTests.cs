using System.Text.Json;
using QuantPeft.Formats.HuggingFace;
using QuantPeft.Memory.Presets;
using QuantPeft.Trainers.Data;
using QuantPeft.Trainers.Data.Demo;
using QuantPeft.Trainers.Model;
using QuantPeft.Trainers.Recipes;
using QuantPeft.Trainers.Tokenizers;
using QuantPeft.Trainers.Training;

namespace QuantPeft.Trainers.Tests.Recipes;

public class SyntheticModelTests
{
    private static readonly ModelSpec Tiny = new()
    {
        ModelType = "llama", NumLayers = 2, HiddenSize = 256, IntermediateSize = 512, NumHeads = 4, NumKvHeads = 2,
        VocabSize = 300, MaxPositionEmbeddings = 64,
    };

    private static string WriteConfig(TempDir dir, ModelSpec spec)
    {
        string folder = dir.File("config-only");
        Directory.CreateDirectory(folder);
        ModelConfigWriter.WriteToFolder(spec, folder, "bfloat16");
        return folder;
    }

    [Fact]
    public void APresetReferenceHasThePresetsShapeAndSeedZero()
    {
        var model = SyntheticModel.Parse("synthetic:llama-2-7b");
        Assert.Equal(ModelPresets.Get("llama-2-7b"), model.Spec);
        Assert.Equal(0UL, model.Seed);
        Assert.Equal(17UL, SyntheticModel.Parse("synthetic:tinyllama-1.1b@17").Seed);
        Assert.Equal(ModelPresets.Get("llama-2-7b"), ModelFolder.ReadSpec("synthetic:llama-2-7b"));
        Assert.Same(ByteLevelTokenizer.Instance, ModelFolder.ReadTokenizer("synthetic:llama-2-7b"));
    }

    [Fact]
    public void AConfigPathOrItsFolderIsAccepted()
    {
        using var dir = new TempDir();
        string folder = WriteConfig(dir, Tiny);
        Assert.Equal(Tiny.HiddenSize, SyntheticModel.Parse("synthetic:" + folder).Spec.HiddenSize);
        var model = SyntheticModel.Parse("synthetic:" + Path.Combine(folder, "config.json") + "@3");
        Assert.Equal(Tiny.IntermediateSize, model.Spec.IntermediateSize);
        Assert.Equal(3UL, model.Seed);
    }

    [Theory]
    [InlineData("synthetic:llama-9-7b", "'llama-9-7b' is neither a preset")]
    [InlineData("synthetic:llama-2-7b@x1", "'x1'")]
    [InlineData("synthetic:", "expected synthetic:PRESET")]
    public void BadReferencesAreErrorsNamingWhatIsWrong(string reference, string expected)
    {
        var e = Assert.Throws<ModelException>(() => ModelFolder.Check(reference));
        Assert.Contains(expected, e.Message);
        Assert.Contains(reference, e.Message);
    }

    [Fact]
    public void AVocabularySmallerThanTheByteTokenizersIsRefused()
    {
        using var dir = new TempDir();
        string folder = WriteConfig(dir, Tiny with { VocabSize = 258 });
        var e = Assert.Throws<ModelException>(() => SyntheticModel.Parse("synthetic:" + folder));
        Assert.Contains("vocab_size 258", e.Message);
    }

    [Fact]
    public void ATinySyntheticModelTrainsThroughTheRecipe()
    {
        using var dir = new TempDir();
        string reference = "synthetic:" + WriteConfig(dir, Tiny) + "@4";
        // The micro-batch holds the whole 16-record set, so every step sees the same rows and the loss must fall.
        (var train, var eval) = UpperCaseTask.Generate(5, 16, 16);
        string trainPath = dir.File("train.jsonl"), evalPath = dir.File("eval.jsonl");
        JsonlDatasetWriter.Write(trainPath, train);
        JsonlDatasetWriter.Write(evalPath, eval);
        var options = new FinetuneOptions
        {
            ModelFolder = reference, DataPath = trainPath, EvalPath = evalPath, Steps = 12, Rank = 8, LearningRate = 1e-1,
            MicroBatchSize = 16, SequenceLength = 32, EvalEvery = 0, ExactMatchRecords = 0, Seed = 7,
        };
        using var recipe = new FinetuneRecipe(options);
        recipe.Setup();
        string metrics = dir.File("metrics.jsonl");
        using (var log = new MetricsWriter(metrics)) recipe.Train(log);
        var losses = File.ReadLines(metrics).Select(l => JsonDocument.Parse(l).RootElement)
            .Where(e => e.TryGetProperty("loss", out _)).Select(e => e.GetProperty("loss").GetDouble()).ToList();
        Assert.Equal(12, losses.Count);
        Assert.All(losses, l => Assert.True(double.IsFinite(l)));
        // N(0, 0.02²) weights and unit norms: the untrained model is near uniform over the vocabulary.
        Assert.InRange(losses[0], Math.Log(Tiny.VocabSize) - 0.5, Math.Log(Tiny.VocabSize) + 0.5);
        // The adapters cannot touch the LM head, whose 0.02-scale rows bound every logit by 0.02·hidden (5.1 here),
        // so the loss levels off about 1.1 nats below its start (4.64 on a 2-core x64 VM); 0.8 leaves a wide margin.
        Assert.True(losses.Skip(8).Average() < losses[0] - 0.8, string.Join(", ", losses.Select(l => l.ToString("F3"))));
    }

    [Fact]
    public void GreedyDecodingOfAWiderVocabularyOnlyPicksTokenizerIds()
    {
        using var dir = new TempDir();
        string reference = "synthetic:" + WriteConfig(dir, Tiny with { HiddenSize = 32, IntermediateSize = 64 });
        var spec = ModelFolder.ReadSpec(reference);
        using var model = ModelFolder.Load(reference, spec, new DecoderOptions());
        int[][] prompts = [[256, 104, 105], [256, 97, 98]];
        var outputs = GreedyDecoder.Generate(model, prompts, maxNewTokens: 12, eos: null, vocabSize: ByteLevelTokenizer.Size);
        Assert.All(outputs, o => Assert.Equal(12, o.Length));
        Assert.All(outputs.SelectMany(o => o), id => Assert.InRange(id, 0, ByteLevelTokenizer.Size - 1));
        var records = new[] { DatasetRecord.FromPromptCompletion("hi", "HI") };
        Assert.InRange(GreedyDecoder.ExactMatch(model, ByteLevelTokenizer.Instance, records), 0.0, 1.0);
    }
}
