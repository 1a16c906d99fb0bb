using QuantPeft.Formats.HuggingFace;
using QuantPeft.Memory.Planning;
using QuantPeft.Optimizers;
using QuantPeft.Trainers.Model;
using QuantPeft.Trainers.Recipes;
using QuantPeft.Trainers.Recipes.Components;
using QuantPeft.Trainers.Tokenizers;
using QuantPeft.Trainers.Training;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Tests.Recipes;

/// <summary>The contract between the recipe and its components: which are installed, when each hook runs and what the run holds then.</summary>
public class RecipeComponentTests
{
    private static readonly ModelSpec Tiny = new()
    {
        ModelType = "llama", NumLayers = 2, HiddenSize = 32, IntermediateSize = 64, NumHeads = 2, NumKvHeads = 2,
        VocabSize = ByteLevelTokenizer.Size, TieWordEmbeddings = true, MaxPositionEmbeddings = 64,
    };

    private static FinetuneOptions Options(TempDir dir)
    {
        TinyRecipeFiles.WriteModel(Tiny, dir.File("model"));
        TinyRecipeFiles.WriteTask(dir, 32, 8);
        return new FinetuneOptions
        {
            ModelFolder = dir.File("model"), DataPath = dir.File("train.jsonl"), EvalPath = dir.File("eval.jsonl"),
            Steps = 2, GradientAccumulation = 2, Rank = 4, MicroBatchSize = 8, SequenceLength = 32,
            EvalEvery = 0, ExactMatchRecords = 0, Seed = 3,
        };
    }

    // Notes each hook with what the run holds at that moment.
    private sealed class Recorder : IRecipeComponent
    {
        public List<string> Calls { get; } = [];
        public float[]? FirstTrainableAtResume { get; private set; }
        public Func<RecipeRun, int, Optimizer?>? ReplaceAt { get; init; }

        public DecoderOptions BeforeLoad(RecipeRun run, DecoderOptions decoder)
        {
            Calls.Add("BeforeLoad");
            Assert.Throws<InvalidOperationException>(() => run.Model);
            return decoder;
        }

        public void AfterLoad(RecipeRun run)
        {
            Calls.Add("AfterLoad");
            Assert.Equal(Tiny.NumLayers, run.Model.Layers.Count);
            Assert.Empty(run.Trainable);
        }

        public void BeforeOptimizer(RecipeRun run)
        {
            Calls.Add("BeforeOptimizer");
            Assert.NotEmpty(run.Trainable);
            Assert.Null(run.Optimizer);
        }

        public void AfterSetup(RecipeRun run)
        {
            Calls.Add("AfterSetup");
            Assert.NotNull(run.Optimizer);
            Assert.Equal(run.Trainable.Select(p => p.Name), run.Optimized.Select(p => p.Name));
        }

        public void OnResume(RecipeRun run, int step)
        {
            Calls.Add($"OnResume {step}");
            FirstTrainableAtResume = run.Trainable[0].Param.detach().cpu().to(ScalarType.Float32).data<float>().ToArray();
        }

        public void BeforeStep(RecipeRun run, int step)
        {
            Calls.Add($"BeforeStep {step}");
            if (ReplaceAt?.Invoke(run, step) is { } next)
            {
                run.Optimizer!.Dispose();
                run.ReplaceOptimizer(next, run.Trainable);
            }
        }

        public void AfterForward(RecipeRun run) => Calls.Add("AfterForward");

        public void BeforeUpdate(RecipeRun run)
        {
            Calls.Add("BeforeUpdate");
            // Backward has run for every micro-batch: each trained parameter holds its gradient.
            Assert.All(run.Optimized, p => Assert.NotNull(p.Param.grad));
        }

        public void OnDispose(RecipeRun run) => Calls.Add("OnDispose");
    }

    [Fact]
    public void ARunWithNoStrategyOptionInstallsNoComponentOffTheHostAndOnlyHeapTrimmingOnIt()
    {
        var plain = new FinetuneOptions { ModelFolder = "m", DataPath = "d" };
        Assert.Empty(RecipeComponents.Select(plain, host: false));
        Assert.IsType<HeapTrimming>(Assert.Single(RecipeComponents.Select(plain, host: true)));
    }

    [Fact]
    public void EachStrategyOptionInstallsItsComponent()
    {
        var o = new FinetuneOptions { ModelFolder = "m", DataPath = "d" };
        Assert.IsType<LoramStructuredPruning>(Assert.Single(RecipeComponents.Select(o with { Method = TrainingMethod.Loram, Prune = 0.5 }, host: false)));
        Assert.IsType<SharedAdapterBases>(Assert.Single(RecipeComponents.Select(o with { Method = TrainingMethod.Vera }, host: false)));
        Assert.IsType<LisaLayerSampling>(Assert.Single(RecipeComponents.Select(o with { Method = TrainingMethod.Lisa, LisaLayers = 1 }, host: false)));
        Assert.IsType<LayerwiseUpdates>(Assert.Single(RecipeComponents.Select(o with { Method = TrainingMethod.Full, Layerwise = true }, host: false)));
        // A method's own component, from its descriptor: DyLoRA draws each step's rank.
        Assert.IsType<DyloraRankSampling>(Assert.Single(RecipeComponents.Select(o with { Method = TrainingMethod.Dylora }, host: false)));
        // Kept gradients are a host-memory measure for adapters under checkpointing; full-parameter runs drop theirs.
        Assert.Contains(RecipeComponents.Select(o with { Checkpointing = true }, host: true), c => c is KeptGradients);
        Assert.DoesNotContain(RecipeComponents.Select(o with { Checkpointing = true }, host: false), c => c is KeptGradients);
        Assert.DoesNotContain(RecipeComponents.Select(o with { Method = TrainingMethod.Full, Checkpointing = true }, host: true), c => c is KeptGradients);
    }

    [Fact]
    public void HooksRunInTheirPhasesAndAResumeRestoresTensorsBeforeOnResume()
    {
        using var dir = new TempDir();
        string runFolder = dir.File("run");
        var options = Options(dir) with { SaveEvery = 2, RunFolder = runFolder };
        var first = new Recorder();
        float[] trained;
        using (var recipe = new FinetuneRecipe(options, [first]))
        {
            recipe.Setup();
            Assert.Same(first, recipe.Components[^1]);
            using (var log = new MetricsWriter(dir.File("metrics.jsonl"))) recipe.Train(log);
            trained = recipe.Adapters[0].Layer.AdapterTensors().Values.First().detach().cpu().to(ScalarType.Float32).data<float>().ToArray();
        }
        string[] step(int s) => [$"BeforeStep {s}", "AfterForward", "AfterForward", "BeforeUpdate"];
        Assert.Equal(["BeforeLoad", "AfterLoad", "BeforeOptimizer", "AfterSetup", .. step(0), .. step(1), "OnDispose"], first.Calls);

        var resumed = new Recorder();
        using (var recipe = new FinetuneRecipe(options with { Steps = 3, ResumeFrom = runFolder }, [resumed]))
        {
            recipe.Setup();
            using (var log = new MetricsWriter(dir.File("metrics2.jsonl"))) recipe.Train(log);
        }
        Assert.Equal(["BeforeLoad", "AfterLoad", "BeforeOptimizer", "AfterSetup", "OnResume 2", .. step(2), "OnDispose"], resumed.Calls);
        // The run's first trainable tensor is the first adapter's first tensor; at OnResume it holds the checkpoint's values.
        Assert.Equal(trained, resumed.FirstTrainableAtResume);
    }

    [Fact]
    public void AnOptimizerReplacedBeforeAStepIsTheOneTheStepUses()
    {
        using var dir = new TempDir();
        Optimizer? replacement = null;
        var recorder = new Recorder
        {
            ReplaceAt = (run, s) => s == 1 ? replacement = run.CreateOptimizer(run.Trainable) : null,
        };
        using var recipe = new FinetuneRecipe(Options(dir) with { LearningRate = 1e-2, WarmupRatio = 0 }, [recorder]);
        recipe.Setup();
        using (var log = new MetricsWriter(dir.File("metrics.jsonl"))) recipe.Train(log);
        Assert.Same(replacement, recipe.CurrentOptimizer);
        // The recipe set the schedule's step-1 rate on it: without warm-up, the cosine's last step is its floor, 0.1 × the peak 1e-2.
        Assert.Equal(1e-3, replacement!.Groups[0].Lr, 12);
    }

    [Fact]
    public void CheckpointsGoToTheRunFolderOptionNotTheMetricsLogsFolder()
    {
        using var dir = new TempDir();
        var options = Options(dir) with { SaveEvery = 1, RunFolder = dir.File("checkpoints") };
        Directory.CreateDirectory(dir.File("log"));
        using (var recipe = new FinetuneRecipe(options))
        {
            recipe.Setup();
            using var log = new MetricsWriter(Path.Combine(dir.File("log"), "metrics.jsonl"));
            recipe.Train(log);
        }
        Assert.Equal([1, 2], TrainingCheckpoint.List(dir.File("checkpoints")).Select(c => c.Step));
        Assert.Empty(Directory.GetDirectories(dir.File("log")));

        var e = Assert.Throws<RecipeException>(() => new FinetuneRecipe(options with { RunFolder = null }));
        Assert.StartsWith("--save-every 1:", e.Message);
    }
}
