using QuantPeft.Memory.Planning;
using QuantPeft.Trainers.Training;
using System.Text.Json;
using QuantPeft.Formats.HuggingFace;
using QuantPeft.Formats.Peft;
using QuantPeft.Trainers.Adapters;
using QuantPeft.Trainers.Data;
using QuantPeft.Trainers.Data.Demo;
using QuantPeft.Trainers.Model;
using QuantPeft.Trainers.Recipes;
using QuantPeft.Trainers.Tokenizers;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Tests.Recipes;

public class RecipeTests
{
    private static readonly ModelSpec Tiny = new()
    {
        ModelType = "llama", NumLayers = 2, HiddenSize = 32, IntermediateSize = 64, NumHeads = 2, NumKvHeads = 2,
        VocabSize = ByteLevelTokenizer.Size, TieWordEmbeddings = true, MaxPositionEmbeddings = 64,
    };

    internal static string WriteTinyModel(TempDir dir) => TinyRecipeFiles.WriteModel(Tiny, dir.File("model"));

    // trainRecords = the micro-batch size makes every step see the same 16 records, so even a 20-step run on a
    // random tiny base memorises them and the loss falls by a wide margin on any CPU's kernels.
    internal static FinetuneOptions Options(TempDir dir, string model, int steps, int trainRecords = 256)
    {
        var (trainPath, evalPath) = TinyRecipeFiles.WriteTask(dir, trainRecords, 32);
        return new FinetuneOptions
        {
            ModelFolder = model, DataPath = trainPath, EvalPath = evalPath, Steps = steps, Rank = 4, LearningRate = 5e-2,
            MicroBatchSize = 16, SequenceLength = 32, EvalEvery = 0, ExactMatchRecords = 8, Seed = 7,
        };
    }

    [Fact]
    public void ShortQloraRunLogsAFallingLossAndTheSavedAdapterReproducesTheTrainedLogits()
    {
        using var dir = new TempDir();
        string model = WriteTinyModel(dir);
        var options = Options(dir, model, steps: 20, trainRecords: 16);
        using var ids = tensor(new long[] { 256, 117, 112, 112, 101, 114, 58, 32, 97, 98 }, [1, 10]);
        Tensor trained;
        using (var recipe = new FinetuneRecipe(options))
        {
            recipe.Setup();
            Assert.Equal(2 * 7, recipe.Adapters.Count);
            // LoRA on all seven projections: r·(in + out) each, summed over 2 layers.
            long perLayer = 4 * ((32 + 32) * 4 + (32 + 64) * 2 + (64 + 32));
            Assert.Equal(2 * perLayer, recipe.TrainableParameters);
            using (var log = new MetricsWriter(Path.Combine(dir.Path, "metrics.jsonl"))) recipe.Train(log);
            var losses = File.ReadLines(Path.Combine(dir.Path, "metrics.jsonl"))
                .Select(l => JsonDocument.Parse(l).RootElement).Where(e => e.TryGetProperty("loss", out _))
                .Select(e => e.GetProperty("loss").GetDouble()).ToList();
            Assert.Equal(20, losses.Count);
            Assert.True(losses.Skip(15).Average() < losses.Take(5).Average() - 1.0, $"first {losses.Take(5).Average()}, last {losses.Skip(15).Average()}");
            recipe.Save(dir.File("adapter"));
            using (no_grad()) trained = recipe.Model.forward(ids).to(ScalarType.Float32).DetachFromDisposeScope();
        }

        using var adapter = PeftAdapter.Load(dir.File("adapter"));
        Assert.Equal(14, adapter.Modules.Count);
        Assert.Contains(adapter.Weights.Tensors, t => t.Name == "base_model.model.model.layers.1.mlp.down_proj.lora_A.weight");
        using var fresh = new FinetuneRecipe(options);
        fresh.Setup();
        using (no_grad())
        {
            using var untrained = fresh.Model.forward(ids).to(ScalarType.Float32);
            Assert.False(untrained.allclose(trained, rtol: 1e-3, atol: 1e-3));
            fresh.LoadAdapter(dir.File("adapter"));
            using var reloaded = fresh.Model.forward(ids).to(ScalarType.Float32);
            // Same adapter, same inputs: equal up to the bf16 reduction order libtorch picks for the thread
            // count it gets (a loaded machine can change it), far tighter than the trained/untrained gap above.
            Assert.True(reloaded.allclose(trained, rtol: 1e-5, atol: 1e-5), $"max diff {(reloaded - trained).abs().max().item<float>()}");
        }
        trained.Dispose();
    }

    [Fact]
    public void FreshLoraLeavesTheRealDemoModelsLogitsUnchanged()
    {
        string folder = DemoModelFolder();
        var spec = ModelFolder.ReadSpec(folder);
        var decoder = new DecoderOptions { LinearFactory = BaseWeights.Factory(WeightFormat.Nf4, true, ScalarType.BFloat16) };
        using var model = ModelFolder.Load(folder, spec, decoder);
        using var ids = tensor(ByteLevelTokenizer.Instance.Encode("upper: cat => ").Select(i => (long)i).ToArray()).unsqueeze(0);
        using var before = model.forward(ids);
        var adapters = ModelAdapters.Attach(model, AdapterMethod.Lora, new LoraOptions(8, 16), ModelAdapters.AllLinear, seed: 1);
        Assert.All(adapters, a => Assert.True(((LoraLinear)a.Layer).B.count_nonzero().item<long>() == 0));
        Assert.All(model.named_parameters(), p => Assert.Equal(p.name.Contains(".lora."), p.parameter.requires_grad));
        using var after = model.forward(ids);
        Assert.True(after.equal(before).all().item<bool>());
    }

    [Fact]
    public void UnknownTargetModuleIsAnErrorNamingIt()
    {
        // qkv_proj is Phi-3's fused projection (a name ModelAdapters.ForModel checks against the model); Wqkv is no one's.
        var e = Assert.Throws<AdapterException>(() => ModelAdapters.ResolveTargets(["q,Wqkv"]));
        Assert.Contains("'Wqkv'", e.Message);
        Assert.Equal(["q_proj", "v_proj", "gate_proj"], ModelAdapters.ResolveTargets(["q,v_proj", "gate"]));
    }

    [Fact]
    public void SequenceBeyondTheModelLimitNamesTheFlag()
    {
        using var dir = new TempDir();
        string model = WriteTinyModel(dir);
        using var recipe = new FinetuneRecipe(Options(dir, model, 1) with { SequenceLength = 65 });
        var e = Assert.Throws<RecipeException>(recipe.Setup);
        Assert.StartsWith("--seq: 65 exceeds", e.Message);
    }

    internal static string DemoModelFolder()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "QuantPeft.sln"))) dir = dir.Parent;
        return Path.Combine(dir!.FullName, "Trainers", "Demo", "Model");
    }
}
