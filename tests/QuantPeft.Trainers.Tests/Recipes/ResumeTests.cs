using System.Text.Json;
using QuantPeft.Formats.Archive;
using QuantPeft.Formats.HuggingFace;
using QuantPeft.Memory.Planning;
using QuantPeft.Optimizers;
using QuantPeft.Trainers.Data;
using QuantPeft.Trainers.Data.Demo;
using QuantPeft.Trainers.Model;
using QuantPeft.Trainers.Recipes;
using QuantPeft.Trainers.Tokenizers;
using QuantPeft.Trainers.Training;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Tests.Recipes;

/// <summary>
/// Runs with no other test at the same time: libtorch's CPU kernels may split a bf16 reduction differently when
/// another thread's work competes for the intra-op pool, and then even two fresh runs differ in the last bits
/// (seen once with the NF4 base while the export tests ran beside it: step 2 differed by 6e-4 relative).
/// </summary>
[CollectionDefinition(nameof(ExactReplay), DisableParallelization = true)]
public sealed class ExactReplay;

[Collection(nameof(ExactReplay))]
public class ResumeTests
{
    // Intermediate 128 so that at rank 32 the up/gate B [128, 32] and down A [32, 128] have 4096 elements, the size
    // from which adamw-8bit keeps blockwise 8-bit moments instead of f32 ones.
    private static readonly ModelSpec Tiny = new()
    {
        ModelType = "llama", NumLayers = 2, HiddenSize = 32, IntermediateSize = 128, NumHeads = 2, NumKvHeads = 2,
        VocabSize = ByteLevelTokenizer.Size, TieWordEmbeddings = true, MaxPositionEmbeddings = 64,
    };

    private sealed class Stop : Exception;

    private static FinetuneOptions Options(TempDir dir)
    {
        TinyRecipeFiles.WriteModel(Tiny, dir.File("model"));
        // 40 records in micro-batches of 16: three micro-batches per epoch, the last one short, so a 10-step run
        // crosses several epoch boundaries and a resume lands mid-epoch.
        TinyRecipeFiles.WriteTask(dir, 40, 16);
        return new FinetuneOptions
        {
            ModelFolder = dir.File("model"), DataPath = dir.File("train.jsonl"), EvalPath = dir.File("eval.jsonl"),
            Steps = 10, Rank = 4, LearningRate = 2e-2, WarmupRatio = 0.2, MicroBatchSize = 16, SequenceLength = 32,
            EvalEvery = 0, ExactMatchRecords = 0, Seed = 7,
        };
    }

    private static (List<double> Losses, Dictionary<string, float[]> Trainable) Run(FinetuneOptions options, string runFolder, int? stopAfter = null)
    {
        Directory.CreateDirectory(runFolder);
        string metrics = Path.Combine(runFolder, "metrics.jsonl");
        using var recipe = new FinetuneRecipe(options with { RunFolder = runFolder });
        recipe.Setup();
        if (recipe.ResumedFrom is not null)
            TrainingCheckpoint.ContinueMetrics(metrics, metrics, recipe.StartStep);
        using (var log = new MetricsWriter(metrics, append: recipe.ResumedFrom is not null))
        {
            try
            {
                recipe.Train(log, r => { if (r.Step == stopAfter) throw new Stop(); });
            }
            catch (Stop)
            {
            }
        }
        var losses = File.ReadLines(metrics).Select(l => JsonDocument.Parse(l).RootElement)
            .Where(e => e.TryGetProperty("loss", out _)).Select(e => e.GetProperty("loss").GetDouble()).ToList();
        // Every parameter of the model: adapters, and the base weights that full-parameter methods train.
        var trainable = recipe.Model.named_parameters()
            .ToDictionary(p => p.name, p => p.parameter.detach().cpu().to(ScalarType.Float32).data<float>().ToArray());
        return (losses, trainable);
    }

    [Theory]
    [InlineData("adamw", 1, 4, "nf4", TrainingMethod.Lora)]
    [InlineData("adamw", 2, 4, "bf16", TrainingMethod.Lora)]
    [InlineData("adamw-8bit", 1, 32, "bf16", TrainingMethod.Lora)]
    // LISA with K = 3 and one of two layers: the stop (after step 5) is inside period 1, step 7 starts period 2.
    [InlineData("adamw", 1, 4, "bf16", TrainingMethod.Lisa)]
    // DyLoRA: each step's rank is drawn from (seed, step), so the resumed steps 6-10 train at the ranks the uninterrupted run did.
    [InlineData("adamw", 2, 4, "bf16", TrainingMethod.Dylora)]
    [InlineData("adamw", 1, 4, "nf4", TrainingMethod.Nlora)]
    public void StoppedAndResumedRunReproducesTheUninterruptedOne(string optimizer, int accumulation, int rank, string weights, TrainingMethod method)
    {
        using var dir = new TempDir();
        var options = Options(dir) with
        {
            Optimizer = Knob.ParseOptimizer(optimizer), GradientAccumulation = accumulation, Rank = rank,
            Weights = weights == "nf4" ? WeightFormat.Nf4 : WeightFormat.Bf16, Method = method,
            LisaLayers = method == TrainingMethod.Lisa ? 1 : 0, LisaInterval = 3,
            LearningRate = method == TrainingMethod.Lisa ? 2e-3 : 2e-2,
        };

        var (fullLosses, fullTensors) = Run(options, dir.File("full"));
        Assert.Equal(10, fullLosses.Count);

        string stopped = dir.File("stopped");
        var (firstLosses, _) = Run(options with { SaveEvery = 5 }, stopped, stopAfter: 5);
        Assert.Equal(5, firstLosses.Count);
        Assert.Equal([5], TrainingCheckpoint.List(stopped).Select(c => c.Step));
        var state = TrainingCheckpoint.ReadState(Path.Combine(stopped, "checkpoint-5"));
        Assert.Equal(5L * accumulation, state.MicroBatches);
        Assert.Equal(3, state.BatchesPerEpoch);
        Assert.Equal((int)(5L * accumulation / 3), state.Epoch);
        Assert.Equal((int)(5L * accumulation % 3), state.Position);
        if (optimizer == "adamw-8bit")
        {
            using var archive = ArchiveReader.Open(Path.Combine(stopped, "checkpoint-5", TrainingCheckpoint.OptimizerFileName));
            Assert.Contains(archive.Entries, e => e.Name.EndsWith(".absmax", StringComparison.Ordinal));
        }

        // A fresh recipe, given the run folder: it picks checkpoint-5 and appends steps 6-10 to the log.
        var (resumedLosses, resumedTensors) = Run(options with { ResumeFrom = stopped }, stopped);
        Assert.Equal(10, resumedLosses.Count);
        for (int i = 0; i < 10; i++)
            Assert.True(Math.Abs(resumedLosses[i] - fullLosses[i]) <= 1e-6 * Math.Abs(fullLosses[i]),
                $"step {i + 1}: resumed {resumedLosses[i]:R}, uninterrupted {fullLosses[i]:R}");
        Assert.Equal(fullTensors.Keys.Order(), resumedTensors.Keys.Order());
        foreach (var (name, full) in fullTensors)
        {
            float scale = full.Max(MathF.Abs);
            float diff = full.Zip(resumedTensors[name], (a, b) => MathF.Abs(a - b)).Max();
            Assert.True(diff <= 1e-6f * scale, $"{name}: max difference {diff} at scale {scale}");
        }
        // The adapters did move, so equal tensors are not two untouched initialisations.
        if (method == TrainingMethod.Lora)
            Assert.Contains(fullTensors, kv => kv.Key.EndsWith("lora_B.weight", StringComparison.Ordinal) && kv.Value.Any(v => v != 0));
    }

    [Theory]
    [InlineData(TrainingTask.Dpo, TrainingMethod.Lora)]    // reference: adapters off, in every step
    [InlineData(TrainingTask.Dpo, TrainingMethod.Pissa)]   // reference: cached from the starting model, before the resume loads
    [InlineData(TrainingTask.Orpo, TrainingMethod.Lora)]
    public void StoppedAndResumedPreferenceRunReproducesTheUninterruptedOne(TrainingTask task, TrainingMethod method)
    {
        using var dir = new TempDir();
        var (train, eval) = UpperCaseTask.Generate(5, 40, 16);
        PreferenceRecord Pair(DatasetRecord r) => PreferenceRecord.FromPrompt(r.Prompt!, r.Completion!, r.Completion!.ToLowerInvariant());
        PreferenceDatasetWriter.Write(dir.File("pairs.jsonl"), train.Select(Pair));
        PreferenceDatasetWriter.Write(dir.File("pairs-eval.jsonl"), eval.Select(Pair));
        var options = Options(dir) with
        {
            DataPath = dir.File("pairs.jsonl"), EvalPath = dir.File("pairs-eval.jsonl"), Method = method,
            Preference = new PreferenceOptions { Task = task, Beta = 0.5, OrpoLambda = 0.5 },
        };
        var (fullLosses, fullTensors) = Run(options, dir.File("full"));
        string stopped = dir.File("stopped");
        Run(options with { SaveEvery = 5 }, stopped, stopAfter: 5);
        Assert.Equal(3, TrainingCheckpoint.ReadState(Path.Combine(stopped, "checkpoint-5")).BatchesPerEpoch);
        var (resumedLosses, resumedTensors) = Run(options with { ResumeFrom = stopped }, stopped);
        Assert.Equal(10, resumedLosses.Count);
        for (int i = 0; i < 10; i++)
            Assert.True(Math.Abs(resumedLosses[i] - fullLosses[i]) <= 1e-6 * Math.Abs(fullLosses[i]),
                $"step {i + 1}: resumed {resumedLosses[i]:R}, uninterrupted {fullLosses[i]:R}");
        foreach (var (name, full) in fullTensors)
        {
            float scale = full.Max(MathF.Abs);
            float diff = full.Zip(resumedTensors[name], (a, b) => MathF.Abs(a - b)).Max();
            Assert.True(diff <= 1e-6f * scale, $"{name}: max difference {diff} at scale {scale}");
        }
        // A resumed DPO run must not take its reference from the resumed (trained) weights: its losses would differ.
        if (task == TrainingTask.Dpo) Assert.Equal(Math.Log(2), fullLosses[0], 6);
    }

    [Fact]
    public void CheckpointFromARunWithOtherOptionsIsRefusedNamingTheField()
    {
        using var dir = new TempDir();
        var options = Options(dir) with { Steps = 4, SaveEvery = 2, RunFolder = dir.File("run") };
        Run(options, dir.File("run"));
        // Saves every 2 of 4 steps and keeps the newest two: both remain.
        Assert.Equal([2, 4], TrainingCheckpoint.List(dir.File("run")).Select(c => c.Step));

        using var other = new FinetuneRecipe(options with { Rank = 8, ResumeFrom = dir.File("run") });
        var e = Assert.Throws<RecipeException>(other.Setup);
        Assert.Contains("--rank (Rank) differs", e.Message);
        Assert.Contains("written with 4, this run has 8", e.Message);

        using var seq = new FinetuneRecipe(options with { MicroBatchSize = 8, ResumeFrom = Path.Combine(dir.File("run"), "checkpoint-2") });
        Assert.Contains("--batch (MicroBatchSize) differs", Assert.Throws<RecipeException>(seq.Setup).Message);

        File.AppendAllText(options.DataPath, "{\"prompt\": \"upper: zz => \", \"completion\": \"ZZ\"}\n");
        using var data = new FinetuneRecipe(options with { ResumeFrom = dir.File("run") });
        Assert.Contains("--data (data) differs", Assert.Throws<RecipeException>(data.Setup).Message);
    }

    [Fact]
    public void OnlyTheNewestTwoCheckpointsAreKeptAndAFailedSaveLeavesNothing()
    {
        using var dir = new TempDir();
        var options = Options(dir) with { Steps = 7, SaveEvery = 2, RunFolder = dir.File("run") };
        string run = dir.File("run");
        Run(options, run);
        Assert.Equal([4, 6], TrainingCheckpoint.List(run).Select(c => c.Step));
        Assert.Equal(Path.Combine(run, "checkpoint-6"), TrainingCheckpoint.Resolve(run));

        // A save that fails half-way (an int tensor the safetensors writer refuses) leaves no checkpoint-9 and no
        // temporary folder, and a leftover of a killed save is not mistaken for a checkpoint.
        var state = TrainingCheckpoint.ReadState(Path.Combine(run, "checkpoint-6")) with { Step = 9 };
        using var bad = zeros([3], ScalarType.Int32);
        var weight = new TorchSharp.Modules.Parameter(zeros([2, 2]));
        using var optimizer = OptimizerFactory.Create("adamw", [new ParamGroup("g", [("w", weight)], new ParamGroupOptions(Lr: 1e-3))]);
        Assert.ThrowsAny<Exception>(() => TrainingCheckpoint.Write(run, state, [("bad", bad)], optimizer));
        Assert.Equal([4, 6], TrainingCheckpoint.List(run).Select(c => c.Step));
        Assert.Empty(Directory.GetDirectories(run, ".*"));
        Directory.CreateDirectory(Path.Combine(run, ".checkpoint-9.0123.tmp"));
        Directory.CreateDirectory(Path.Combine(run, "checkpoint-8"));   // no trainer_state.json: not a checkpoint
        Assert.Equal(Path.Combine(run, "checkpoint-6"), TrainingCheckpoint.Resolve(run));

        var e = Assert.Throws<RecipeException>(() => TrainingCheckpoint.Resolve(dir.File("model")));
        Assert.Contains("no trainer_state.json", e.Message);
    }
}
