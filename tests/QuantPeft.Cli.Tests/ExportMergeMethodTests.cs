using QuantPeft.Memory.Planning;
using QuantPeft.Trainers.Demo;
using QuantPeft.Trainers.Model;
using QuantPeft.Trainers.Recipes;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace QuantPeft.Cli.Tests;

/// <summary>
/// <c>qpeft export --merge</c> of VeRA, OSoRA, Bone, DyLoRA and RandLoRA runs from the command line: the merged folder, read as a plain dense
/// model, gives the logits of the run's adapter loaded back into an unmerged model of the same method.
/// </summary>
public class ExportMergeMethodTests(ITestOutputHelper output)
{
    private static readonly long[] Ids = [256, 117, 112, 112, 101, 114, 58, 32, 104, 105, 32, 61, 62, 32, 72, 73];

    private static Tensor Logits(CausalLm model)
    {
        using var ids = tensor(Ids, [1, Ids.Length]);
        using (no_grad()) return model.forward(ids).to(ScalarType.Float32);
    }

    [Theory]
    [InlineData("vera", "64", "1e-1")]
    [InlineData("osora", "8", "1e-1")]
    // Bone's block is added to all in/r column blocks at once, so a tenth of the rate moves the logits as far.
    [InlineData("bone", "8", "1e-2")]
    [InlineData("dylora", "8", "1e-1")]
    [InlineData("randlora", "8", "3e-2")]
    // EVA's ranks are redistributed (rank_pattern, alpha_pattern); the truth's Setup reads the same batches again, so
    // its adapters get the same ranks.
    [InlineData("eva", "8", "1e-1")]
    // LoRA-GA is saved as the rank-2r LoRA on the original base; the truth loads it as that LoRA.
    [InlineData("lora-ga", "8", "1e-1")]
    public void RunExportsMergedToTheAdaptedLogits(string method, string rank, string lr)
    {
        using var tmp = new TempFolder();
        string run = Path.Combine(tmp.Path, "run"), merged = Path.Combine(tmp.Path, "merged");
        string model = DemoModel.ShippedFolder()!;
        var (exit, stdout, stderr) = CliHarness.Run(["train", "--steps", "4", "--batch", "8", "--method", method, "--weights", "bf16", "--rank", rank,
            "--lr", lr, "-o", run, .. TrainResumeCommandTests.SmallTask(tmp.Path)]);
        Assert.True(exit == 0, stderr + stdout);
        (exit, stdout, stderr) = CliHarness.Run("export", run, "--model", model, "--merge", "-o", merged);
        Assert.True(exit == 0, stderr + stdout);
        Assert.Contains("merged 28 adapter modules", stdout);   // 4 layers × 7 projections

        // Truth: the saved adapter on the frozen base, unmerged, through the trainer's own VeRA/OSoRA/Bone/RandLoRA layers.
        var options = new FinetuneOptions
        {
            ModelFolder = model, DataPath = Path.Combine(tmp.Path, "train.jsonl"), EvalPath = Path.Combine(tmp.Path, "eval.jsonl"), ExactMatchRecords = 0,
            Steps = 1, Weights = WeightFormat.Bf16, Method = Knob.ParseMethod(method), Rank = int.Parse(rank, System.Globalization.CultureInfo.InvariantCulture),
            MicroBatchSize = 8,
        };
        if (method == "lora-ga") options = options with { Method = TrainingMethod.Lora, Rank = 2 * options.Rank, Alpha = 2 * options.Alpha };
        using var recipe = new FinetuneRecipe(options);
        recipe.Setup();
        using var before = Logits(recipe.Model);
        recipe.LoadAdapter(Path.Combine(run, "adapter"));
        using var adapted = Logits(recipe.Model);
        using var plain = ModelFolder.Load(merged, ModelFolder.ReadSpec(merged), new DecoderOptions { ComputeDType = ScalarType.BFloat16 });
        using var actual = Logits(plain);

        // bf16 tolerance (as TrainedAdapterMergeTests in the Trainers tests): the merged weights are W + ΔW rounded to bf16
        // once, the unmerged model adds an f32 update to a bf16 base; the logits are bf16, one ulp of the largest being
        // 2^(⌊log2 scale⌋ − 7). Bound: max 3 ulps, mean 1 ulp; the adapter must move the logits by 4 times the max bound.
        float scale = adapted.abs().max().item<float>(), ulp = MathF.Pow(2, MathF.Floor(MathF.Log2(scale)) - 7);
        float error = (actual - adapted).abs().max().item<float>(), meanError = (actual - adapted).abs().mean().item<float>();
        float effect = (before - adapted).abs().max().item<float>();
        output.WriteLine($"{method}: max |logit| {scale:F3} (ulp {ulp}), merged vs adapted max {error:F4} mean {meanError:F5}, adapter effect {effect:F3}");
        Assert.True(effect > 4 * 3 * ulp, $"{method}: the adapter moves the logits by only {effect} (ulp {ulp})");
        Assert.True(error <= 3 * ulp, $"{method}: merged vs adapted max diff {error} (ulp {ulp})");
        Assert.True(meanError <= ulp, $"{method}: merged vs adapted mean diff {meanError} (ulp {ulp})");
    }
}
