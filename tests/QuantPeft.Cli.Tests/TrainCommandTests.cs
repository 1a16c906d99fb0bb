using System.Text.Json;

namespace QuantPeft.Cli.Tests;

public class TrainCommandTests
{
    [Theory]
    [InlineData("--prune", "0.5", "--prune: only applies to --method loram, not lora")]
    [InlineData("--optimizer", "galore", "--optimizer galore contradicts --method lora")]
    [InlineData("--optimizer", "natural-galore", "--optimizer natural-galore contradicts --method lora")]
    [InlineData("--weights", "int3", "--weights: expected one of")]
    [InlineData("--double-quant", "maybe", "--double-quant: expected on or off")]
    [InlineData("--targets", "q,wqkv", "target module 'wqkv'")]
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
        Assert.Contains("--seq 100000 exceeds the model's max_position_embeddings", stderr);
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
        // The adapter names its base as given: a synthetic reference is not a path to resolve.
        using var adapterConfig = JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "adapter", "adapter_config.json")));
        Assert.Equal(reference, adapterConfig.RootElement.GetProperty("base_model_name_or_path").GetString());

        (exit, _, stderr) = CliHarness.Run("train", "synthetic:llama-2-7x", "-o", Path.Combine(tmp.Path, "run2"));
        Assert.Equal(1, exit);
        Assert.Contains("'llama-2-7x' is neither a preset", stderr);
    }
}

public class TrainResumeCommandTests
{
    // A small task (64 train, 8 eval records) keeps the eval before/after, with its greedy exact match, short.
    internal static string[] SmallTask(string folder)
    {
        var (train, eval) = QuantPeft.Trainers.Data.Demo.UpperCaseTask.Generate(3, 64, 8);
        string trainPath = Path.Combine(folder, "train.jsonl"), evalPath = Path.Combine(folder, "eval.jsonl");
        QuantPeft.Trainers.Data.JsonlDatasetWriter.Write(trainPath, train);
        QuantPeft.Trainers.Data.JsonlDatasetWriter.Write(evalPath, eval);
        return ["--data", trainPath, "--eval", evalPath];
    }

    private static List<double> Losses(string run) => File.ReadLines(Path.Combine(run, "metrics.jsonl"))
        .Select(l => JsonDocument.Parse(l).RootElement).Where(e => e.TryGetProperty("loss", out _))
        .Select(e => e.GetProperty("loss").GetDouble()).ToList();

    [Fact]
    public void SaveEveryThenResumeContinuesTheDemoRunWithTheSameLosses()
    {
        using var tmp = new TempFolder();
        string run = Path.Combine(tmp.Path, "run");
        string[] common = ["--batch", "4", .. SmallTask(tmp.Path)];
        var (exit, stdout, stderr) = CliHarness.Run(["train", "--steps", "6", "--save-every", "3", "-o", run, .. common]);
        Assert.True(exit == 0, stderr + stdout);
        Assert.True(Directory.Exists(Path.Combine(run, "checkpoint-3")));
        Assert.True(Directory.Exists(Path.Combine(run, "checkpoint-6")));
        var uninterrupted = Losses(run);
        Assert.Equal(6, uninterrupted.Count);

        // As if the run had died during step 6's save: the run folder resolves to its newest checkpoint, step 3;
        // steps 4-6 are trained again and replace their log lines.
        Directory.Delete(Path.Combine(run, "checkpoint-6"), recursive: true);
        (exit, stdout, stderr) = CliHarness.Run(["train", "--steps", "6", "--save-every", "3", "--resume", run, .. common]);
        Assert.True(exit == 0, stderr + stdout);
        Assert.Contains("at step 3 of 6", stdout);
        var resumed = Losses(run);
        Assert.Equal(6, resumed.Count);
        for (int i = 0; i < 6; i++)
            Assert.True(Math.Abs(resumed[i] - uninterrupted[i]) <= 1e-6 * Math.Abs(uninterrupted[i]), $"step {i + 1}: {resumed[i]:R} vs {uninterrupted[i]:R}");
        Assert.True(Directory.Exists(Path.Combine(run, "checkpoint-6")));
        Assert.True(File.Exists(Path.Combine(run, "adapter", "adapter_model.safetensors")));

        (exit, _, stderr) = CliHarness.Run(["train", "--steps", "6", "--resume", run, "--batch", "2", .. SmallTask(tmp.Path)]);
        Assert.Equal(1, exit);
        Assert.Contains("--batch (MicroBatchSize) differs", stderr);
    }
}

public class ExportCommandTests
{
    private static string DemoModel() => CliHarness.DemoModel();

    [Fact]
    public void TrainedDemoRunExportsAsAMergedModelAndAsAnAdapter()
    {
        using var tmp = new TempFolder();
        string run = Path.Combine(tmp.Path, "run");
        var (exit, stdout, stderr) = CliHarness.Run(["train", "--steps", "2", "--batch", "4", "-o", run, .. TrainResumeCommandTests.SmallTask(tmp.Path)]);
        Assert.True(exit == 0, stderr + stdout);

        string merged = Path.Combine(tmp.Path, "merged");
        (exit, stdout, stderr) = CliHarness.Run("export", run, "--model", DemoModel(), "--merge", "-o", merged);
        Assert.True(exit == 0, stderr + stdout);
        Assert.Contains("merged", stdout);
        using var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(merged, "config.json")));
        Assert.Equal("bfloat16", config.RootElement.GetProperty("torch_dtype").GetString());
        using var source = QuantPeft.Formats.Safetensors.SafetensorsFile.Open(Path.Combine(DemoModel(), "model.safetensors"));
        using var written = QuantPeft.Formats.Safetensors.SafetensorsFile.Open(Path.Combine(merged, "model.safetensors"));
        Assert.Equal(source.Tensors.Select(t => t.Name), written.Tensors.Select(t => t.Name));
        Assert.True(File.Exists(Path.Combine(merged, "qpeft-tokenizer.json")));

        string sharded = Path.Combine(tmp.Path, "sharded");
        (exit, stdout, stderr) = CliHarness.Run("export", Path.Combine(run, "adapter"), "--model", DemoModel(), "--merge", "--max-shard-size", "1MB", "-o", sharded);
        Assert.True(exit == 0, stderr + stdout);
        Assert.True(File.Exists(Path.Combine(sharded, "model.safetensors.index.json")));

        string copy = Path.Combine(tmp.Path, "copy");
        (exit, stdout, stderr) = CliHarness.Run("export", run, "--model", DemoModel(), "-o", copy);
        Assert.True(exit == 0, stderr + stdout);
        Assert.True(File.Exists(Path.Combine(copy, "adapter_model.safetensors")));
        Assert.True(File.Exists(Path.Combine(copy, "adapter_config.json")));
    }

    [Fact]
    public void BadInputExitsOneNamingTheFileAndWritesNothing()
    {
        using var tmp = new TempFolder();
        string output = Path.Combine(tmp.Path, "out");
        string adapter = Path.Combine(tmp.Path, "adapter");
        // An adapter for a model with hidden size 5: it fits nothing in the demo model.
        var config = new QuantPeft.Formats.Peft.PeftAdapterConfig
        {
            PeftType = "LORA", R = 2, LoraAlpha = 4, TargetModules = QuantPeft.Formats.Peft.PeftModuleSelector.FromNames(["q_proj"]),
        };
        QuantPeft.Formats.Peft.PeftAdapter.Save(adapter, config,
        [
            QuantPeft.Formats.Safetensors.SafetensorsTensorEntry.Zeros("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight", QuantPeft.Formats.Safetensors.SafetensorsDType.F32, [2, 5]),
            QuantPeft.Formats.Safetensors.SafetensorsTensorEntry.Zeros("base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight", QuantPeft.Formats.Safetensors.SafetensorsDType.F32, [5, 2]),
        ]);

        var (exit, _, stderr) = CliHarness.Run("export", adapter, "--model", DemoModel(), "--merge", "-o", output);
        Assert.Equal(1, exit);
        Assert.Contains("adapter_model.safetensors", stderr);
        Assert.Contains("trained on another model", stderr);

        (exit, _, stderr) = CliHarness.Run("export", adapter, "--merge", "-o", output);
        Assert.Equal(1, exit);
        Assert.Contains("--model: required", stderr);

        File.Delete(Path.Combine(adapter, "adapter_model.safetensors"));
        (exit, _, stderr) = CliHarness.Run("export", adapter, "--model", DemoModel(), "--merge", "-o", output);
        Assert.Equal(1, exit);
        Assert.Contains("adapter_model.safetensors", stderr);

        string empty = Directory.CreateDirectory(Path.Combine(tmp.Path, "empty")).FullName;
        (exit, _, stderr) = CliHarness.Run("export", empty, "--model", DemoModel(), "-o", output);
        Assert.Equal(1, exit);
        Assert.Contains("adapter_config.json", stderr);

        (exit, _, stderr) = CliHarness.Run("export", adapter, "--model", Path.Combine(tmp.Path, "nope"), "-o", output);
        Assert.Equal(1, exit);
        Assert.Contains("nope", stderr);
        Assert.False(Directory.Exists(output));
        Assert.Empty(Directory.GetDirectories(tmp.Path, ".*"));
    }
}

public class RunBudgetTests
{
    [Fact]
    public void ARunOverItsBudgetSavesACheckpointStopsWithOneLineAndResumes()
    {
        using var tmp = new TempFolder();
        string run = Path.Combine(tmp.Path, "run");
        string[] common = ["--batch", "4", .. TrainResumeCommandTests.SmallTask(tmp.Path)];
        // A limit no process can stay under: the guard must stop the run, save where it stands and exit 1.
        Environment.SetEnvironmentVariable(QuantPeft.Cli.Commands.RunBudget.LimitVariable, "1MiB");
        int exit;
        string stdout, stderr;
        try
        {
            (exit, stdout, stderr) = CliHarness.Run(["train", "--steps", "2", "-o", run, .. common]);
        }
        finally
        {
            Environment.SetEnvironmentVariable(QuantPeft.Cli.Commands.RunBudget.LimitVariable, null);
        }
        Assert.True(exit == 1, stdout + stderr);
        string line = stderr.Trim();
        Assert.DoesNotContain('\n', line);
        Assert.Contains("memory budget exceeded in setup: measured ", line);
        Assert.Contains("against the budget of 1.0 MiB (planned peak ", line);
        Assert.Contains("resumable checkpoint ", line);
        Assert.False(File.Exists(Path.Combine(run, "adapter", "adapter_model.safetensors")));
        string checkpoint = Path.Combine(run, "checkpoint-0");
        Assert.True(Directory.Exists(checkpoint), stderr);

        (exit, stdout, stderr) = CliHarness.Run(["train", "--steps", "2", "--resume", checkpoint, .. common]);
        Assert.True(exit == 0, stdout + stderr);
        string report = File.ReadAllText(Path.Combine(run, "report.md"));
        Assert.Matches(@"- peak memory: predicted [0-9.]+ [KMG]iB, measured [0-9.]+ [KMG]iB \([+-][0-9.]+ %\)", report);
    }
}
