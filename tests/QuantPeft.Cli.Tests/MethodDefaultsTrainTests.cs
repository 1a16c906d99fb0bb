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
