using System.Text.Json;

namespace QuantPeft.Cli.Tests;

public class PreferenceTrainCommandTests
{
    [Theory]
    [InlineData("{\"prompt\": \"upper: a => \", \"rejected\": \"a\"}", "line 2: missing field 'chosen'")]
    [InlineData("{\"prompt\": \"upper: a => \", \"chosen\": \"A\"}", "line 2: missing field 'rejected'")]
    [InlineData("{\"prompt\": \"upper: a => \", \"chosen\": \"A\", \"rejected\": \"A\"}", "line 2: 'chosen' and 'rejected' are the same text")]
    [InlineData("{\"prompt\": \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\", \"chosen\": \"A\", \"rejected\": \"a\"}", "line 2: the prompt has 48 tokens, as long as or longer than --seq 32")]
    public void BadPairsExitOneNamingFileAndLineAndLeaveNoRunFolder(string badLine, string message)
    {
        using var tmp = new TempFolder();
        string data = Path.Combine(tmp.Path, "pairs.jsonl");
        File.WriteAllText(data, "{\"prompt\": \"upper: b => \", \"chosen\": \"B\", \"rejected\": \"b\"}\n" + badLine + "\n");
        string run = Path.Combine(tmp.Path, "run");
        var (exit, _, stderr) = CliHarness.Run("train", "--task", "dpo", "--data", data, "--seq", "32", "--steps", "1", "-o", run);
        Assert.Equal(1, exit);
        Assert.Contains("pairs.jsonl", stderr);
        Assert.Contains(message, stderr);
        Assert.Single(stderr.Trim().Split('\n'));
        Assert.False(Directory.Exists(run));
    }

    [Theory]
    [InlineData(new[] { "--beta", "0.2" }, "--beta: only applies to --task dpo or orpo")]
    [InlineData(new[] { "--task", "kto" }, "--task: expected sft, dpo or orpo")]
    [InlineData(new[] { "--task", "orpo", "--beta", "0.2" }, "--beta: only applies to --task dpo")]
    [InlineData(new[] { "--task", "dpo", "--orpo-lambda", "0.2" }, "--orpo-lambda: only applies to --task orpo")]
    [InlineData(new[] { "--task", "dpo", "--label-smoothing", "0.5" }, "--label-smoothing: expected a value in [0, 0.5)")]
    public void PreferenceFlagsOutsideTheirTaskExitOneNamingTheFlag(string[] flags, string message)
    {
        using var tmp = new TempFolder();
        var (exit, _, stderr) = CliHarness.Run(["train", "-o", Path.Combine(tmp.Path, "run"), .. flags]);
        Assert.Equal(1, exit);
        Assert.Contains(message, stderr);
    }

    [Fact]
    public void ShortDemoDpoRunLogsLn2RewardsAndWritesTheReport()
    {
        using var tmp = new TempFolder();
        string run = Path.Combine(tmp.Path, "run");
        var (exit, stdout, stderr) = CliHarness.Run("train", "--task", "dpo", "--steps", "2", "--batch", "4", "-o", run);
        Assert.True(exit == 0, stderr + stdout);
        Assert.Contains("reference: the model with its adapters off", stdout);
        var lines = File.ReadLines(Path.Combine(run, "metrics.jsonl")).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal(Math.Log(2), lines[0].GetProperty("eval_loss").GetDouble(), 6);
        Assert.Equal(0, lines[0].GetProperty("eval_reward_accuracy").GetDouble());
        var step1 = lines.First(l => l.TryGetProperty("loss", out _));
        Assert.Equal(Math.Log(2), step1.GetProperty("loss").GetDouble(), 6);
        foreach (string key in new[] { "rewards_chosen", "rewards_rejected", "reward_margin", "reward_accuracy" })
        {
            Assert.True(step1.TryGetProperty(key, out _), key);
            Assert.True(lines[^1].TryGetProperty("eval_" + key, out _), "eval_" + key);
        }
        string report = File.ReadAllText(Path.Combine(run, "report.md"));
        Assert.Contains("## Preference tuning", report);
        Assert.Contains("| before | 0.6931 |", report);
        Assert.True(File.Exists(Path.Combine(run, "rewards.png")));
        Assert.True(File.Exists(Path.Combine(run, "adapter", "adapter_model.safetensors")));
    }
}
