using System.Text.Json;

namespace QuantPeft.Cli.Tests;

/// <summary>
/// EVA and LoRA-GA from the command line: a run saves its data-driven initial factors in the run folder, and a resume
/// reads them from there instead of reading data again, continuing with the same losses and saving the same adapter shape.
/// </summary>
public class DataInitTrainTests
{
    private static List<double> Losses(string run) => File.ReadLines(Path.Combine(run, "metrics.jsonl"))
        .Select(l => JsonDocument.Parse(l).RootElement).Where(e => e.TryGetProperty("loss", out _))
        .Select(e => e.GetProperty("loss").GetDouble()).ToList();

    [Theory]
    [InlineData("eva")]
    [InlineData("lora-ga")]
    public void AResumeReadsTheInitialFactorsBackAndContinuesWithTheSameLosses(string method)
    {
        using var tmp = new TempFolder();
        string run = Path.Combine(tmp.Path, "run");
        string[] common = ["--method", method, "--batch", "4", .. TrainResumeCommandTests.SmallTask(tmp.Path)];
        var (exit, stdout, stderr) = CliHarness.Run(["train", "--steps", "4", "--save-every", "2", "-o", run, .. common]);
        Assert.True(exit == 0, stderr + stdout);
        string factors = Path.Combine(run, "data-init.safetensors");
        Assert.True(File.Exists(factors));
        var uninterrupted = Losses(run);
        string config = File.ReadAllText(Path.Combine(run, "adapter", "adapter_config.json"));
        using (var saved = JsonDocument.Parse(config))
        {
            var c = saved.RootElement;
            Assert.Equal("LORA", c.GetProperty("peft_type").GetString());
            if (method == "eva")
            {
                // PEFT's EVA layout: r is the budget per target; rank_pattern names the targets whose rank moved, α moves
                // with it (alpha_pattern = α·rᵢ/r = 2rᵢ), and the 4 layers × 7 targets keep the total 28 × 8.
                Assert.Equal(8, c.GetProperty("r").GetInt32());
                var ranks = c.GetProperty("rank_pattern").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetInt32());
                var alphas = c.GetProperty("alpha_pattern").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetDouble());
                Assert.NotEmpty(ranks);
                Assert.Equal(28 * 8, ranks.Values.Sum() + (28 - ranks.Count) * 8);
                Assert.All(ranks, kv => Assert.Equal(2.0 * kv.Value, alphas[kv.Key]));
            }
            else
            {
                Assert.Equal(16, c.GetProperty("r").GetInt32());   // rank 2r on the original base, α doubled
                Assert.Equal(32, c.GetProperty("lora_alpha").GetDouble());
            }
        }

        Directory.Delete(Path.Combine(run, "checkpoint-4"), recursive: true);
        File.Move(factors, factors + ".moved");
        (exit, _, stderr) = CliHarness.Run(["train", "--steps", "4", "--save-every", "2", "--resume", run, .. common]);
        Assert.Equal(1, exit);
        Assert.Contains("data-init.safetensors' is missing", stderr);

        File.Move(factors + ".moved", factors);
        (exit, stdout, stderr) = CliHarness.Run(["train", "--steps", "4", "--save-every", "2", "--resume", run, .. common]);
        Assert.True(exit == 0, stderr + stdout);
        Assert.Contains("at step 2 of 4", stdout);
        var resumed = Losses(run);
        Assert.Equal(4, resumed.Count);
        for (int i = 0; i < 4; i++)
            Assert.True(Math.Abs(resumed[i] - uninterrupted[i]) <= 1e-6 * Math.Abs(uninterrupted[i]), $"step {i + 1}: {resumed[i]:R} vs {uninterrupted[i]:R}");
        using var before = JsonDocument.Parse(config);
        using var after = JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "adapter", "adapter_config.json")));
        Assert.Equal(before.RootElement.GetProperty("r").GetInt32(), after.RootElement.GetProperty("r").GetInt32());
        Assert.Equal(before.RootElement.GetProperty("rank_pattern").ToString(), after.RootElement.GetProperty("rank_pattern").ToString());
    }
}
