using System.Text.Json;
using QuantPeft.Memory.Planning;
using QuantPeft.Trainers.Demo;
using QuantPeft.Trainers.Model;
using QuantPeft.Trainers.Recipes;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace QuantPeft.Cli.Tests;

/// <summary>
/// An NLoRA run is saved as the rank-2r PEFT LoRA on the original weights (M folded into B); <c>qpeft export --merge</c>
/// gives the logits of that LoRA applied unmerged, and the plain export is the PEFT LoRA itself.
/// </summary>
public class NloraExportTests(ITestOutputHelper output)
{
    private static readonly long[] Ids = [256, 117, 112, 112, 101, 114, 58, 32, 104, 105, 32, 61, 62, 32, 72, 73];

    private static Tensor Logits(CausalLm model)
    {
        using var ids = tensor(Ids, [1, Ids.Length]);
        using (no_grad()) return model.forward(ids).to(ScalarType.Float32);
    }

    [Fact]
    public void ARunExportsAsTheRank2rLoraAndMergedToItsLogits()
    {
        using var tmp = new TempFolder();
        string run = Path.Combine(tmp.Path, "run"), merged = Path.Combine(tmp.Path, "merged"), peft = Path.Combine(tmp.Path, "peft");
        string model = DemoModel.ShippedFolder()!;
        var (exit, stdout, stderr) = CliHarness.Run(["train", "--steps", "4", "--batch", "8", "--method", "nlora", "--weights", "bf16", "--rank", "8",
            "--lr", "1e-2", "-o", run, .. TrainResumeCommandTests.SmallTask(tmp.Path)]);
        Assert.True(exit == 0, stderr + stdout);
        (exit, stdout, stderr) = CliHarness.Run("export", run, "--model", model, "--merge", "-o", merged);
        Assert.True(exit == 0, stderr + stdout);
        Assert.Contains("merged 28 adapter modules", stdout);
        (exit, stdout, stderr) = CliHarness.Run("export", run, "--model", model, "-o", peft);
        Assert.True(exit == 0, stderr + stdout);
        using (var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(peft, "adapter_config.json"))))
        {
            Assert.Equal("LORA", config.RootElement.GetProperty("peft_type").GetString());
            Assert.Equal(16, config.RootElement.GetProperty("r").GetInt32());
            Assert.Equal(32, config.RootElement.GetProperty("lora_alpha").GetDouble());
        }

        // Truth: the saved LoRA (rank 16, α 32) on the original bf16 weights, unmerged, as PEFT applies it.
        var options = new FinetuneOptions
        {
            ModelFolder = model, DataPath = Path.Combine(tmp.Path, "train.jsonl"), EvalPath = Path.Combine(tmp.Path, "eval.jsonl"), ExactMatchRecords = 0,
            Steps = 1, Weights = WeightFormat.Bf16, Method = TrainingMethod.Lora, Rank = 16, Alpha = 32,
        };
        using var recipe = new FinetuneRecipe(options);
        recipe.Setup();
        using var before = Logits(recipe.Model);
        recipe.LoadAdapter(Path.Combine(run, "adapter"));
        using var adapted = Logits(recipe.Model);
        using var plain = ModelFolder.Load(merged, ModelFolder.ReadSpec(merged), new DecoderOptions { ComputeDType = ScalarType.BFloat16 });
        using var actual = Logits(plain);
        float scale = adapted.abs().max().item<float>(), ulp = MathF.Pow(2, MathF.Floor(MathF.Log2(scale)) - 7);
        float error = (actual - adapted).abs().max().item<float>(), meanError = (actual - adapted).abs().mean().item<float>();
        float effect = (before - adapted).abs().max().item<float>();
        output.WriteLine($"nlora: merged vs adapted max {error:F4} mean {meanError:F5} (ulp {ulp}), adapter effect {effect:F3}");
        Assert.True(effect > 4 * 3 * ulp, $"the adapter moves the logits by only {effect}");
        // The unmerged rank-2r LoRA sums s·B·M·A·x and −s·B₀·M₀·A₀·x in f32; each is the size of the Nyström part
        // C·A_W⁺·R, which on the demo model's 8×8 leading blocks is far larger than W itself, so the truth carries that
        // cancellation (the merged weight adds the difference once). Measured: max 0.30 at ulp 1/64, mean under an ulp.
        Assert.True(error <= 32 * ulp, $"merged vs adapted max diff {error} (ulp {ulp})");
        Assert.True(meanError <= ulp, $"merged vs adapted mean diff {meanError} (ulp {ulp})");
    }
}
