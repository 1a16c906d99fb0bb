using System.Text.Json;

namespace QuantPeft.Cli.Tests;

public class FullParameterTrainCommandTests
{
    [Fact]
    public void GaLore8BitLayerwiseTrainsTheDemoModelAndSavesAHuggingFaceModelFolder()
    {
        using var tmp = new TempFolder();
        string run = Path.Combine(tmp.Path, "run");
        var (exit, stdout, stderr) = CliHarness.Run("train", "--method", "galore", "--optimizer", "galore-8bit", "--layerwise", "on",
            "--weights", "bf16", "--steps", "8", "--batch", "8", "-o", run);
        Assert.True(exit == 0, stderr + stdout);
        var losses = File.ReadLines(Path.Combine(run, "metrics.jsonl")).Select(l => JsonDocument.Parse(l).RootElement)
            .Where(e => e.TryGetProperty("loss", out _)).Select(e => e.GetProperty("loss").GetDouble()).ToList();
        Assert.Equal(8, losses.Count);
        // The demo model has never seen the task: its loss starts near 8.5 nats and every full-parameter run so far
        // has dropped below 7 within 8 steps, so 1 nat is a margin no kernel difference can close.
        Assert.True(losses.TakeLast(2).Average() < losses.Take(2).Average() - 1.0, string.Join(", ", losses));
        Assert.True(File.Exists(Path.Combine(run, "model", "config.json")));
        Assert.True(File.Exists(Path.Combine(run, "model", "model.safetensors")));
        Assert.True(File.Exists(Path.Combine(run, "model", "qpeft-tokenizer.json")));
        Assert.False(Directory.Exists(Path.Combine(run, "adapter")));
        Assert.Contains("Hugging Face model", stdout);
    }

    [Theory]
    [InlineData("--method full --weights nf4", "--weights nf4 contradicts --method full")]
    [InlineData("--method lisa --weights nf4", "--weights nf4 contradicts --method lisa")]
    [InlineData("--method loram --prune 0", "--prune: --method loram needs a pruning ratio")]
    [InlineData("--method galore --optimizer adamw --weights bf16", "--optimizer adamw contradicts --method galore: expected --optimizer galore or galore-8bit")]
    [InlineData("--method natural-galore --optimizer galore --weights bf16", "--optimizer galore contradicts --method natural-galore")]
    [InlineData("--layerwise on", "--layerwise on contradicts --method lora")]
    [InlineData("--method full --weights bf16 --layerwise on --grad-accum 2", "--layerwise on contradicts --grad-accum 2")]
    [InlineData("--method full --weights bf16 --layerwise on --checkpointing on", "--layerwise on contradicts --checkpointing on")]
    [InlineData("--method lisa --lisa-layers 0", "--lisa-layers: --method lisa needs at least 1 sampled layer, found 0")]
    [InlineData("--method lisa --weights bf16 --lisa-layers 5", "--lisa-layers: expected 1..4 (the model's layers), found 5")]
    [InlineData("--method lisa --weights bf16 --lisa-layers 1 --optimizer galore", "--optimizer galore contradicts --method lisa")]
    [InlineData("--method galore --optimizer galore --weights bf16 --rank 500", "--rank 500")]
    public void ContradictoryOrOutOfRangeStrategyKnobsExitOneNamingTheFlags(string flags, string message)
    {
        using var tmp = new TempFolder();
        var (exit, _, stderr) = CliHarness.Run(["train", .. flags.Split(' '), "--steps", "1", "-o", Path.Combine(tmp.Path, "run")]);
        Assert.True(exit == 1, stderr);
        Assert.Contains(message, stderr);
        Assert.Single(stderr.Trim().Split('\n'));
        Assert.False(Directory.Exists(Path.Combine(tmp.Path, "run", "model")));
    }
}
