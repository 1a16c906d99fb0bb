using System.Text.Json;
using QuantPeft.Formats.Safetensors;
using QuantPeft.Memory.Planning;
using QuantPeft.Trainers.Adapters;
using QuantPeft.Trainers.Demo;
using QuantPeft.Trainers.Model;
using QuantPeft.Trainers.Recipes;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace QuantPeft.Cli.Tests;

/// <summary>
/// A trained DyLoRA adapter works at every rank k ≤ r, and <c>qpeft export --rank k</c> writes it truncated: merged, the
/// model computes what the trained layers compute at rank k; as PEFT, the LoRA of rank k made of the first k components.
/// </summary>
public class DyloraExportTests(ITestOutputHelper output)
{
    private static readonly long[] Ids = [256, 117, 112, 112, 101, 114, 58, 32, 104, 105, 32, 61, 62, 32, 72, 73];

    private static Tensor Logits(CausalLm model)
    {
        using var ids = tensor(Ids, [1, Ids.Length]);
        using (no_grad()) return model.forward(ids).to(ScalarType.Float32);
    }

    // Next-token cross-entropy of the fixed sequence.
    private static double Loss(Tensor logits)
    {
        using var scope = NewDisposeScope();
        var predicted = logits[0].narrow(0, 0, Ids.Length - 1);
        var targets = tensor(Ids[1..]);
        return nn.functional.cross_entropy(predicted, targets).item<float>();
    }

    private static string Train(string folder, string method, string steps = "4")
    {
        string run = Path.Combine(folder, "run-" + method);
        var (exit, stdout, stderr) = CliHarness.Run(["train", "--steps", steps, "--batch", "8", "--method", method, "--weights", "bf16", "--rank", "8",
            "--lr", "1e-1", "-o", run, .. TrainResumeCommandTests.SmallTask(folder)]);
        Assert.True(exit == 0, stderr + stdout);
        return run;
    }

    private static bool Same(Tensor a, Tensor b)
    {
        using var d = a.to(ScalarType.Float32).sub(b.to(ScalarType.Float32)).abs().max();
        return d.item<float>() == 0f;
    }

    private static void SetRank(CausalLm model, int k)
    {
        foreach (var m in model.modules())
            if (m is DyloraLinear d) d.InferenceRank = k;
    }

    [Fact]
    public void EveryRankWorksAndExportAtRankKIsTheTruncatedAdapter()
    {
        using var tmp = new TempFolder();
        string run = Train(tmp.Path, "dylora");
        string adapter = Path.Combine(run, "adapter"), model = DemoModel.ShippedFolder()!;
        using (var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(adapter, "adapter_config.json"))))
        {
            Assert.Equal("LORA", config.RootElement.GetProperty("peft_type").GetString());
            Assert.Equal(8, config.RootElement.GetProperty("r").GetInt32());
        }
        using (var marker = JsonDocument.Parse(File.ReadAllText(Path.Combine(adapter, "dylora_config.json"))))
            Assert.Equal(8, marker.RootElement.GetProperty("r").GetInt32());

        string merged = Path.Combine(tmp.Path, "merged-3"), peft = Path.Combine(tmp.Path, "peft-3");
        var (exit, stdout, stderr) = CliHarness.Run("export", run, "--model", model, "--merge", "--rank", "3", "-o", merged);
        Assert.True(exit == 0, stderr + stdout);
        Assert.Contains("merged 28 adapter modules", stdout);
        (exit, stdout, stderr) = CliHarness.Run("export", run, "--model", model, "--rank", "3", "-o", peft);
        Assert.True(exit == 0, stderr + stdout);

        // PEFT at rank 3: r = 3, the same α, and A, B exactly the first 3 rows / columns of the trained ones.
        using (var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(peft, "adapter_config.json"))))
        {
            Assert.Equal(3, config.RootElement.GetProperty("r").GetInt32());
            Assert.Equal(16, config.RootElement.GetProperty("lora_alpha").GetDouble());
        }
        using (var full = SafetensorsFile.Open(Path.Combine(adapter, "adapter_model.safetensors")))
        using (var cut = SafetensorsFile.Open(Path.Combine(peft, "adapter_model.safetensors")))
        using (var fullSource = new SafetensorsModelSource(Path.Combine(adapter, "adapter_model.safetensors")))
        using (var cutSource = new SafetensorsModelSource(Path.Combine(peft, "adapter_model.safetensors")))
        {
            Assert.Equal(full.Tensors.Select(t => t.Name).Order(), cut.Tensors.Select(t => t.Name).Order());
            foreach (var t in cut.Tensors)
            {
                using var c = cutSource.Get(t.Name);
                using var f = fullSource.Get(t.Name);
                bool isA = t.Name.EndsWith("lora_A.weight", StringComparison.Ordinal);
                Assert.Equal(3, c.shape[isA ? 0 : 1]);
                using var first = isA ? f.narrow(0, 0, 3) : f.narrow(1, 0, 3);
                Assert.True(Same(c, first), t.Name);
            }
        }

        // Truth: the run's adapter loaded into DyLoRA layers, evaluated at each rank.
        var options = new FinetuneOptions
        {
            ModelFolder = model, DataPath = Path.Combine(tmp.Path, "train.jsonl"), EvalPath = Path.Combine(tmp.Path, "eval.jsonl"), ExactMatchRecords = 0,
            Steps = 1, Weights = WeightFormat.Bf16, Method = TrainingMethod.Dylora, Rank = 8,
        };
        using var recipe = new FinetuneRecipe(options);
        recipe.Setup();
        recipe.Model.eval();
        using var before = Logits(recipe.Model);
        recipe.LoadAdapter(adapter);
        var losses = new List<double>();
        for (int k = 1; k <= 8; k++)
        {
            SetRank(recipe.Model, k);
            using var logits = Logits(recipe.Model);
            losses.Add(Loss(logits));
        }
        output.WriteLine($"base loss {Loss(before):F4}; loss at ranks 1..8: {string.Join(", ", losses.Select(l => l.ToString("F4")))}");
        Assert.All(losses, l => Assert.True(double.IsFinite(l)));

        SetRank(recipe.Model, 3);
        using var adapted = Logits(recipe.Model);
        using var plain = ModelFolder.Load(merged, ModelFolder.ReadSpec(merged), new DecoderOptions { ComputeDType = ScalarType.BFloat16 });
        using var actual = Logits(plain);
        // bf16 bounds as in ExportMergeMethodTests: max 3 ulps, mean 1 ulp of the largest logit; the adapter must matter.
        float scale = adapted.abs().max().item<float>(), ulp = MathF.Pow(2, MathF.Floor(MathF.Log2(scale)) - 7);
        float error = (actual - adapted).abs().max().item<float>(), meanError = (actual - adapted).abs().mean().item<float>();
        float effect = (before - adapted).abs().max().item<float>();
        output.WriteLine($"rank 3: merged vs adapted max {error:F4} mean {meanError:F5} (ulp {ulp}), adapter effect {effect:F3}");
        Assert.True(effect > 4 * 3 * ulp, $"the adapter moves the logits by only {effect}");
        Assert.True(error <= 3 * ulp, $"merged vs adapted max diff {error} (ulp {ulp})");
        Assert.True(meanError <= ulp, $"merged vs adapted mean diff {meanError} (ulp {ulp})");

        // Nested: the rank-3 model does not read components 4..8 at all.
        using (no_grad())
            foreach (var m in recipe.Model.modules())
                if (m is DyloraLinear d)
                {
                    d.A.narrow(0, 3, 5).fill_(float.NaN);
                    d.B.narrow(1, 3, 5).fill_(float.NaN);
                }
        using var poisoned = Logits(recipe.Model);
        Assert.True(Same(poisoned, adapted));
    }

    [Theory]
    [InlineData("dylora", "0", "--rank: 0 is outside [1, 8]")]
    [InlineData("dylora", "9", "--rank: 9 is outside [1, 8]")]
    [InlineData("lora", "4", "is not a DyLoRA adapter")]
    public void ABadRankIsOneLineAndWritesNothing(string method, string rank, string message)
    {
        using var tmp = new TempFolder();
        string run = Train(tmp.Path, method, steps: "1");
        foreach (var merge in new[] { true, false })
        {
            string outFolder = Path.Combine(tmp.Path, $"out-{merge}");
            string[] args = ["export", run, "--model", DemoModel.ShippedFolder()!, "--rank", rank, "-o", outFolder, .. merge ? new[] { "--merge" } : []];
            var (exit, stdout, stderr) = CliHarness.Run(args);
            Assert.Equal(1, exit);
            Assert.Contains(message, Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries)));
            Assert.False(Directory.Exists(outFolder));
        }
    }
}
