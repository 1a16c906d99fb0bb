using System.Text.Json;

namespace QuantPeft.Cli.Tests;

/// <summary>What <c>qpeft train</c> runs with when <c>--optimizer</c> or <c>--lr</c> is left out.</summary>
public class MethodDefaultsTrainTests
{
    private static (JsonElement Strategy, JsonElement Trainer, string Report) Train(TempFolder tmp, params string[] flags)
    {
        string run = Path.Combine(tmp.Path, "run");
        var (exit, stdout, stderr) = CliHarness.Run(["train", .. flags, "--steps", "1", "--batch", "4", "-o", run,
            .. TrainResumeCommandTests.SmallTask(tmp.Path)]);
        Assert.True(exit == 0, stderr + stdout);
        using var plan = JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "plan.json")));
        return (plan.RootElement.GetProperty("candidates")[0].GetProperty("strategy").Clone(),
            plan.RootElement.GetProperty("trainer").Clone(), File.ReadAllText(Path.Combine(run, "report.md")));
    }

    [Theory]
    [InlineData("galore", "galore")]
    [InlineData("natural-galore", "natural-galore")]
    [InlineData("full", "adamw")]
    public void AFullParameterMethodWithoutOptimizerRunsWithTheOptimizerItImplies(string method, string optimizer)
    {
        using var tmp = new TempFolder();
        var (strategy, _, report) = Train(tmp, "--method", method, "--weights", "bf16");
        Assert.Equal(optimizer, strategy.GetProperty("optimizer").GetString());
        Assert.Contains($"- optimizer: {optimizer}, lr", report);
    }

    // The knobs a method cannot run without follow it when absent: the methods that train the base itself run on a
    // bf16 base, LISA samples the paper's two layers, LoRAM prunes at the smallest ratio the planner searches.
    [Theory]
    [InlineData("full", "bf16", 0, 0.0)]
    [InlineData("lisa", "bf16", 2, 0.0)]
    [InlineData("galore", "bf16", 0, 0.0)]
    [InlineData("loram", "nf4", 0, 0.65)]
    [InlineData("lora", "nf4", 0, 0.0)]
    public void WithoutWeightsLisaLayersOrPruneAMethodRunsWithTheKnobsItImplies(string method, string weights, int lisaLayers, double prune)
    {
        using var tmp = new TempFolder();
        var (strategy, _, _) = Train(tmp, "--method", method);
        Assert.Equal(weights, strategy.GetProperty("weights").GetString());
        Assert.Equal(lisaLayers, strategy.TryGetProperty("lisa_layers", out var l) ? l.GetInt32() : 0);
        Assert.Equal(prune, strategy.TryGetProperty("prune", out var p) ? p.GetDouble() : 0.0);
    }

    [Fact]
    public void AnExplicitOptimizerThatContradictsTheMethodIsStillAnError()
    {
        using var tmp = new TempFolder();
        var (exit, _, stderr) = CliHarness.Run("train", "--method", "natural-galore", "--optimizer", "adamw", "--weights", "bf16",
            "--steps", "1", "-o", Path.Combine(tmp.Path, "run"));
        Assert.Equal(1, exit);
        Assert.Contains("--optimizer adamw contradicts --method natural-galore: expected --optimizer natural-galore", stderr);
        Assert.Single(stderr.Trim().Split('\n'));
        Assert.False(Directory.Exists(Path.Combine(tmp.Path, "run")));
    }

    // The table of default learning rates in docs/strategies.md: 3e-3 for LoRA and its matrix-training relatives,
    // 3e-2 for the two methods that train only vectors.
    [Theory]
    [InlineData("lora", 3e-3)]
    [InlineData("dora", 3e-3)]
    [InlineData("pissa", 3e-3)]
    [InlineData("vera", 3e-2)]
    [InlineData("osora", 3e-2)]
    public void WithoutLrEachAdapterMethodTrainsAtItsDocumentedRate(string method, double lr)
    {
        using var tmp = new TempFolder();
        var (_, trainer, report) = Train(tmp, "--method", method);
        Assert.Equal(lr, trainer.GetProperty("lr").GetDouble());
        Assert.Contains($"lr {lr.ToString(System.Globalization.CultureInfo.CurrentCulture)} (cosine", report);
    }

    [Fact]
    public void AnExplicitLrOverridesTheMethodsRate()
    {
        using var tmp = new TempFolder();
        var (_, trainer, _) = Train(tmp, "--method", "vera", "--lr", "0.001");
        Assert.Equal(0.001, trainer.GetProperty("lr").GetDouble());
    }
}
