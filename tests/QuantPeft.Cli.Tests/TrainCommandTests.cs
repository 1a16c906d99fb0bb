using System.Text.Json;

namespace QuantPeft.Cli.Tests;

public class TrainCommandTests
{
    [Theory]
    [InlineData("--method", "lisa", "--method lisa: not available yet")]
    [InlineData("--method", "loram", "--method loram: not available yet")]
    [InlineData("--optimizer", "paged-adamw", "--optimizer paged-adamw: not available yet")]
    [InlineData("--optimizer", "galore", "--optimizer galore: not available yet")]
    [InlineData("--weights", "int3", "--weights: expected one of")]
    [InlineData("--double-quant", "maybe", "--double-quant: expected on or off")]
    [InlineData("--targets", "q,qkv", "target module 'qkv'")]
    [InlineData("--rank", "0", "--rank: expected a positive integer")]
    public void StrategyThatDoesNotExistOrBadValueExitsOneNamingTheFlag(string flag, string value, string message)
    {
        using var tmp = new TempFolder();
        string dir = tmp.Path;
        var (exit, _, stderr) = CliHarness.Run("train", "-o", Path.Combine(dir, "run"), flag, value);
        Assert.Equal(1, exit);
        Assert.Contains(message, stderr);
        Assert.Single(stderr.Trim().Split('\n'));
        Assert.False(Directory.Exists(Path.Combine(dir, "run", "adapter")));
    }

    [Fact]
    public void MissingModelFilesAndBadDataLinesExitOneNamingTheFile()
    {
        using var tmp = new TempFolder();
        string dir = tmp.Path;
        var (exit, _, stderr) = CliHarness.Run("train", dir, "-o", Path.Combine(dir, "run"));
        Assert.Equal(1, exit);
        Assert.Contains("missing config.json", stderr);

        string data = Path.Combine(dir, "bad.jsonl");
        File.WriteAllText(data, "{\"prompt\": \"a\", \"completion\": \"b\"}\n{not json\n");
        (exit, _, stderr) = CliHarness.Run("train", "--data", data, "--steps", "1", "-o", Path.Combine(dir, "run2"));
        Assert.Equal(1, exit);
        Assert.Contains("bad.jsonl", stderr);
        Assert.Contains("line 2", stderr);

        (exit, _, stderr) = CliHarness.Run("train", "--seq", "100000", "-o", Path.Combine(dir, "run3"));
        Assert.Equal(1, exit);
        Assert.Contains("--seq: 100000 exceeds the model's max_position_embeddings", stderr);
    }

    [Fact]
    public void ShortDemoRunWritesPlanMetricsReportChartAndPeftAdapter()
    {
        using var tmp = new TempFolder();
        string run = Path.Combine(tmp.Path, "run");
        var (exit, stdout, stderr) = CliHarness.Run("train", "--steps", "4", "--batch", "8", "-o", run);
        Assert.True(exit == 0, stderr + stdout);
        Assert.Contains("trainable parameters", stdout);
        Assert.Contains("eval before", stdout);
        Assert.Contains("eval after", stdout);
        using var plan = JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "plan.json")));
        var strategy = plan.RootElement.GetProperty("candidates")[0].GetProperty("strategy");
        Assert.Equal(0, plan.RootElement.GetProperty("chosen").GetInt32());
        Assert.Equal("lora", strategy.GetProperty("method").GetString());
        Assert.Equal("nf4", strategy.GetProperty("weights").GetString());
        Assert.True(strategy.GetProperty("double_quant").GetBoolean());
        Assert.Equal(4, plan.RootElement.GetProperty("trainer").GetProperty("steps").GetInt32());
        Assert.Equal(4, File.ReadLines(Path.Combine(run, "metrics.jsonl")).Count(l => l.Contains("\"loss\"")));
        Assert.True(new FileInfo(Path.Combine(run, "loss.png")).Length > 1000);
        Assert.Contains("| before |", File.ReadAllText(Path.Combine(run, "report.md")));
        Assert.True(File.Exists(Path.Combine(run, "adapter", "adapter_config.json")));
        Assert.True(File.Exists(Path.Combine(run, "adapter", "adapter_model.safetensors")));
    }

    [Fact]
    public void ASyntheticModelReferenceTrainsFromTheCommandLine()
    {
        using var tmp = new TempFolder();
        File.WriteAllText(Path.Combine(tmp.Path, "config.json"), """
            {"model_type": "llama", "hidden_size": 64, "intermediate_size": 128, "num_attention_heads": 4,
             "num_key_value_heads": 2, "num_hidden_layers": 2, "vocab_size": 300, "max_position_embeddings": 64,
             "rms_norm_eps": 1e-05, "rope_theta": 10000.0, "tie_word_embeddings": false}
            """);
        string reference = "synthetic:" + tmp.Path + "@3", run = Path.Combine(tmp.Path, "run");
        var (exit, stdout, stderr) = CliHarness.Run("train", reference, "--steps", "2", "--batch", "4", "-o", run);
        Assert.True(exit == 0, stderr + stdout);
        using var plan = JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "plan.json")));
        Assert.Equal(reference, plan.RootElement.GetProperty("model").GetString());
        Assert.Equal(2, File.ReadLines(Path.Combine(run, "metrics.jsonl")).Count(l => l.Contains("\"loss\"")));

        (exit, _, stderr) = CliHarness.Run("train", "synthetic:llama-2-7x", "-o", Path.Combine(tmp.Path, "run2"));
        Assert.Equal(1, exit);
        Assert.Contains("'llama-2-7x' is neither a preset", stderr);
    }
}
