using System.Text.Json;
using QuantPeft.Formats.Peft;
using QuantPeft.Formats.Safetensors;
using QuantPeft.Memory.Planning;
using QuantPeft.Trainers.Recipes;
using QuantPeft.Trainers.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Tests.Recipes;

public class RunAdapterFormatsTests
{
    private static readonly long[] Ids = [256, 117, 112, 112, 101, 114, 58, 32, 97, 98];

    // Trains `steps` steps, saves the adapter, returns the trained logits (f32).
    private static Tensor TrainAndSave(FinetuneOptions options, string adapter, string metrics)
    {
        using var recipe = new FinetuneRecipe(options);
        recipe.Setup();
        using (var log = new MetricsWriter(metrics)) recipe.Train(log);
        recipe.Save(adapter);
        using var ids = tensor(Ids, [1, Ids.Length]);
        using (no_grad()) return recipe.Model.forward(ids).to(ScalarType.Float32).DetachFromDisposeScope();
    }

    private static Tensor LoadAndRun(FinetuneOptions options, string adapter, out Tensor untrained)
    {
        using var recipe = new FinetuneRecipe(options);
        recipe.Setup();
        using var ids = tensor(Ids, [1, Ids.Length]);
        using (no_grad())
        {
            untrained = recipe.Model.forward(ids).to(ScalarType.Float32).DetachFromDisposeScope();
            recipe.LoadAdapter(adapter);
            return recipe.Model.forward(ids).to(ScalarType.Float32).DetachFromDisposeScope();
        }
    }

    private static double MaxDiff(Tensor a, Tensor b)
    {
        using var d = a.sub(b).abs().max();
        return d.item<float>();
    }

    [Fact]
    public void PissaExportsAsARank2rLoraThatGivesTheTrainedLogitsOnTheOriginalBase()
    {
        using var dir = new TempDir();
        string model = RecipeTests.WriteTinyModel(dir);
        var options = RecipeTests.Options(dir, model, steps: 8, trainRecords: 16) with { Method = TrainingMethod.Pissa, Weights = WeightFormat.Bf16, Alpha = 8 };
        string adapter = dir.File("adapter");
        using var trained = TrainAndSave(options, adapter, dir.File("metrics.jsonl"));

        using (var saved = PeftAdapter.Load(adapter))
        {
            Assert.Equal("LORA", saved.Config.PeftType);
            Assert.Equal(8, saved.Config.R);              // 2r
            Assert.Equal(16, saved.Config.LoraAlpha);     // 2α keeps α/r
            Assert.False(saved.Config.UseDora);
            var a = saved.Weights.Tensors.Single(t => t.Name == "base_model.model.model.layers.0.mlp.down_proj.lora_A.weight");
            var b = saved.Weights.Tensors.Single(t => t.Name == "base_model.model.model.layers.0.mlp.down_proj.lora_B.weight");
            Assert.Equal(new long[] { 8, 64 }, a.Shape);
            Assert.Equal(new long[] { 32, 8 }, b.Shape);
        }

        // A plain LoRA run on the ORIGINAL bf16 weights, rank 2r and alpha 2α, loads it.
        var lora = options with { Method = TrainingMethod.Lora, Rank = 8, Alpha = 16 };
        using var reloaded = LoadAndRun(lora, adapter, out var untrained);
        using (untrained)
        {
            double gap = MaxDiff(untrained, trained), diff = MaxDiff(reloaded, trained);
            // The two differ only by the bf16 rounding of W_res (PiSSA's base) versus W: far below what training moved.
            Assert.True(gap > 0.5, $"training moved the logits by {gap}");
            Assert.True(diff < 0.1 && diff < gap / 10, $"reloaded vs trained {diff}, trained vs untrained {gap}");
        }
        // Loading the export into a PiSSA run (residual base) would double-count the initial factors: refused.
        using var pissa = new FinetuneRecipe(options);
        pissa.Setup();
        var e = Assert.Throws<RecipeException>(() => pissa.LoadAdapter(adapter));
        Assert.Contains("--method lora --rank 8 --alpha 16", e.Message);
    }

    [Fact]
    public void VeraExportsPeftNamesAndShapesAndReloads()
    {
        using var dir = new TempDir();
        string model = RecipeTests.WriteTinyModel(dir);
        var options = RecipeTests.Options(dir, model, steps: 4, trainRecords: 16) with { Method = TrainingMethod.Vera, Weights = WeightFormat.Bf16, Rank = 16 };
        string adapter = dir.File("adapter");
        using var trained = TrainAndSave(options, adapter, dir.File("metrics.jsonl"));

        using (var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(adapter, PeftAdapter.ConfigFileName))))
        {
            var root = config.RootElement;
            Assert.Equal("VERA", root.GetProperty("peft_type").GetString());
            Assert.Equal(16, root.GetProperty("r").GetInt32());
            Assert.True(root.GetProperty("save_projection").GetBoolean());
            Assert.Equal(0.1, root.GetProperty("d_initial").GetDouble());
            Assert.Equal(7, root.GetProperty("target_modules").GetArrayLength());
        }
        using (var file = SafetensorsFile.Open(Path.Combine(adapter, PeftAdapter.WeightsFileName)))
        {
            var shapes = file.Tensors.ToDictionary(t => t.Name, t => t.Shape);
            // Shared projections: A [r, largest in_features], B [largest out_features, r] (down_proj reads 64, gate/up write 64).
            Assert.Equal(new long[] { 16, 64 }, shapes["base_model.vera_A"]);
            Assert.Equal(new long[] { 64, 16 }, shapes["base_model.vera_B"]);
            Assert.Equal(new long[] { 32 }, shapes["base_model.model.model.layers.1.mlp.down_proj.vera_lambda_b"]);
            Assert.Equal(new long[] { 16 }, shapes["base_model.model.model.layers.1.mlp.down_proj.vera_lambda_d"]);
            Assert.Equal(new long[] { 64 }, shapes["base_model.model.model.layers.0.mlp.up_proj.vera_lambda_b"]);
            Assert.Equal(2 + 2 * 7 * 2, shapes.Count);
        }

        using var reloaded = LoadAndRun(options, adapter, out var untrained);
        using (untrained)
        {
            Assert.True(MaxDiff(untrained, trained) > 1e-3);
            Assert.True(MaxDiff(reloaded, trained) < 1e-5, $"{MaxDiff(reloaded, trained)}");
        }
    }

    [Fact]
    public void OsoraExportsItsOwnPeftTypeAndReloadsOnNf4()
    {
        using var dir = new TempDir();
        string model = RecipeTests.WriteTinyModel(dir);
        var options = RecipeTests.Options(dir, model, steps: 4, trainRecords: 16) with { Method = TrainingMethod.Osora, Weights = WeightFormat.Nf4 };
        string adapter = dir.File("adapter");
        using var trained = TrainAndSave(options, adapter, dir.File("metrics.jsonl"));

        using (var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(adapter, PeftAdapter.ConfigFileName))))
            Assert.Equal("OSORA", config.RootElement.GetProperty("peft_type").GetString());
        using (var file = SafetensorsFile.Open(Path.Combine(adapter, PeftAdapter.WeightsFileName)))
        {
            var shapes = file.Tensors.ToDictionary(t => t.Name, t => t.Shape);
            string p = "base_model.model.model.layers.0.mlp.gate_proj.";
            Assert.Equal(new long[] { 64, 4 }, shapes[p + "osora_U"]);
            Assert.Equal(new long[] { 4, 32 }, shapes[p + "osora_V"]);
            Assert.Equal(new long[] { 4 }, shapes[p + "osora_S"]);
            Assert.Equal(new long[] { 64 }, shapes[p + "osora_O"]);
            Assert.Equal(new long[] { 4 }, shapes[p + "osora_S_init"]);
            Assert.Equal(2 * 7 * 5, shapes.Count);
        }

        using var reloaded = LoadAndRun(options, adapter, out var untrained);
        using (untrained)
        {
            Assert.True(MaxDiff(untrained, trained) > 1e-3);
            Assert.True(MaxDiff(reloaded, trained) < 1e-5, $"{MaxDiff(reloaded, trained)}");
        }
        // An OSoRA folder is not a LoRA adapter: a LoRA run refuses it by name.
        using var lora = new FinetuneRecipe(options with { Method = TrainingMethod.Lora });
        lora.Setup();
        var e = Assert.Throws<RecipeException>(() => lora.LoadAdapter(adapter));
        Assert.Contains("peft_type \"OSORA\"", e.Message);
    }
}
