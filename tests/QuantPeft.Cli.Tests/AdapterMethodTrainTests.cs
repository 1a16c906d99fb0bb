using System.Globalization;
using System.Text.Json;
using QuantPeft.Memory.Planning;
using QuantPeft.Trainers.Data;
using QuantPeft.Trainers.Data.Demo;
using QuantPeft.Trainers.Demo;
using QuantPeft.Trainers.Recipes;

namespace QuantPeft.Cli.Tests;

/// <summary>
/// Each adapter method and the paged optimizer train the built-in demo model from the command line: the logged
/// loss falls and the adapter folder loads back into a fresh model with the same evaluation.
/// </summary>
public class AdapterMethodTrainTests
{
    private const int Steps = 12;

    [Theory]
    [InlineData("pissa", "nf4", "adamw", "8", "3e-3")]
    [InlineData("osora", "nf4", "adamw", "8", "2e-2")]
    [InlineData("vera", "bf16", "adamw", "64", "2e-2")]
    [InlineData("dora", "bf16", "adamw", "8", "3e-3")]
    [InlineData("lora", "nf4", "paged-adamw-8bit", "8", "3e-3")]
    [InlineData("lora", "lq-lora:3", "adamw", "8", "3e-3")]
    public void MethodTrainsTheDemoModelWithAFallingLossAndItsAdapterLoadsBack(string method, string weights, string optimizer, string rank, string lr)
    {
        using var tmp = new TempFolder();
        // 64 records, 8 per step: every record is seen 1.5 times in 12 steps, so the loss falls far below where it starts.
        (var train, var eval) = UpperCaseTask.Generate(3, 64, 8);
        string trainPath = Path.Combine(tmp.Path, "train.jsonl"), evalPath = Path.Combine(tmp.Path, "eval.jsonl");
        JsonlDatasetWriter.Write(trainPath, train);
        JsonlDatasetWriter.Write(evalPath, eval);
        string run = Path.Combine(tmp.Path, "run");
        var (exit, stdout, stderr) = CliHarness.Run("train", "--data", trainPath, "--eval", evalPath, "--steps", Steps.ToString(CultureInfo.InvariantCulture),
            "--batch", "8", "--method", method, "--weights", weights, "--optimizer", optimizer, "--rank", rank, "--lr", lr, "-o", run);
        Assert.True(exit == 0, stderr + stdout);

        var entries = File.ReadLines(Path.Combine(run, "metrics.jsonl")).Select(l => JsonDocument.Parse(l).RootElement.Clone()).ToList();
        var losses = entries.Where(e => e.TryGetProperty("loss", out _)).Select(e => e.GetProperty("loss").GetDouble()).ToList();
        Assert.Equal(Steps, losses.Count);
        double first = losses.Take(3).Average(), last = losses.Skip(Steps - 3).Average();
        // The demo task starts near 8 nats: a fall of a full nat is many times the step-to-step noise.
        Assert.True(last < first - 1.0, $"{method}: first three steps {first:F3}, last three {last:F3}");
        double evalBefore = entries.First(e => e.TryGetProperty("eval_loss", out _)).GetProperty("eval_loss").GetDouble();
        double evalAfter = entries.Last(e => e.TryGetProperty("eval_loss", out _)).GetProperty("eval_loss").GetDouble();
        Assert.True(evalAfter < evalBefore - 1.0, $"{method}: eval {evalBefore:F3} -> {evalAfter:F3}");

        // Load the folder back. PiSSA's and LQ-LoRA's exports are rank-2r LoRAs on the original weights.
        var (m, w) = (Knob.ParseMethod(method), Knob.ParseWeights(weights).Format);
        int r = int.Parse(rank, CultureInfo.InvariantCulture);
        bool relativeToW = m == TrainingMethod.Pissa || w == WeightFormat.LqLora;
        var options = new FinetuneOptions
        {
            ModelFolder = DemoModel.ShippedFolder()!, DataPath = trainPath, EvalPath = evalPath, ExactMatchRecords = 0, Steps = 1,
            Weights = w == WeightFormat.LqLora ? WeightFormat.Bf16 : w,
            Method = m == TrainingMethod.Pissa ? TrainingMethod.Lora : m,
            Rank = relativeToW ? 2 * r : r,
            Alpha = relativeToW ? 32 : 16,
        };
        using var recipe = new FinetuneRecipe(options);
        recipe.Setup();
        recipe.LoadAdapter(Path.Combine(run, "adapter"));
        double reloaded = recipe.Evaluate(exactMatch: false).Loss;
        if (relativeToW)
            // The export sits on the original base where training saw Quant(W − start): close, not equal (PEFT warns of the same).
            Assert.True(Math.Abs(reloaded - evalAfter) < (evalBefore - evalAfter) / 4, $"{method} {weights}: reloaded {reloaded:F4}, trained {evalAfter:F4}, before {evalBefore:F4}");
        else
            Assert.True(Math.Abs(reloaded - evalAfter) < 0.02, $"{method}: reloaded eval {reloaded:F4}, trained {evalAfter:F4}");
    }
}
