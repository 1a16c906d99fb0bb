using System.Text.Json;
using QuantPeft.Formats.Safetensors;

namespace QuantPeft.Cli.Tests;

public class PrequantizedTrainCommandTests
{
    private static string DemoModel() => CliHarness.DemoModel();

    [Fact]
    public void PlanOnAPrequantizedFolderSearchesOnlyItsStoredFormatAndRefusesFlagsThatContradictIt()
    {
        using var tmp = new TempFolder();
        string fp4 = Path.Combine(tmp.Path, "fp4");
        var (exit, stdout, stderr) = CliHarness.Run("quantize", DemoModel(), "--format", "fp4", "-o", fp4);
        Assert.True(exit == 0, stderr + stdout);

        // The open search would price bf16, int8 and nf4 bases too; the folder only has fp4 codes without double quant.
        (exit, stdout, stderr) = CliHarness.Run("plan", fp4, "--format", "json", "--seq", "64");
        Assert.True(exit == 0, stderr + stdout);
        using (var plan = JsonDocument.Parse(stdout))
        {
            var candidates = plan.RootElement.GetProperty("candidates").EnumerateArray().ToList();
            Assert.True(candidates.Count > 1, "the other knobs are still searched");
            Assert.All(candidates, c => Assert.Equal("fp4", c.GetProperty("strategy").GetProperty("weights").GetString()));
            Assert.All(candidates, c => Assert.False(c.GetProperty("strategy").GetProperty("double_quant").GetBoolean()));
        }
        // The same dense model is searched over every format.
        (exit, stdout, stderr) = CliHarness.Run("plan", DemoModel(), "--format", "json", "--seq", "64");
        Assert.True(exit == 0, stderr + stdout);
        using (var plan = JsonDocument.Parse(stdout))
            Assert.Contains(plan.RootElement.GetProperty("candidates").EnumerateArray(), c => c.GetProperty("strategy").GetProperty("weights").GetString() == "bf16");

        foreach (var (flag, value) in new[] { ("--weights", "bf16"), ("--weights", "nf4"), ("--double-quant", "on") })
        {
            (exit, stdout, stderr) = CliHarness.Run("plan", fp4, flag, value);
            Assert.Equal(1, exit);
            Assert.Contains($"{flag} {value}", stderr);
            Assert.Contains("fp4 (bitsandbytes, double quant off)", stderr);
        }
    }

    [Fact]
    public void AnNf4FolderFromQuantizeTrainsRecordsItsFormatInThePlanAndBadFlagsOrTensorsLeaveNoRunFolder()
    {
        using var tmp = new TempFolder();
        string nf4 = Path.Combine(tmp.Path, "nf4");
        var (exit, stdout, stderr) = CliHarness.Run("quantize", DemoModel(), "--format", "nf4", "--double-quant", "-o", nf4);
        Assert.True(exit == 0, stderr + stdout);

        // A few records keep the run (and its greedy exact-match evals) short.
        string data = Path.Combine(tmp.Path, "train.jsonl"), eval = Path.Combine(tmp.Path, "eval.jsonl");
        string[] words = ["ab", "cat", "dog", "sun", "tree", "moon", "fish", "bird"];
        File.WriteAllLines(data, words.Select(w => $"{{\"prompt\": \"upper: {w}\", \"completion\": \" {w.ToUpperInvariant()}\"}}"));
        File.WriteAllLines(eval, words.Take(2).Select(w => $"{{\"prompt\": \"upper: {w}\", \"completion\": \" {w.ToUpperInvariant()}\"}}"));

        // Flags left at their defaults: the folder's format (nf4 with double quantization) is what runs and what the plan prices.
        string run = Path.Combine(tmp.Path, "run");
        (exit, stdout, stderr) = CliHarness.Run("train", nf4, "--data", data, "--eval", eval, "--steps", "2", "--batch", "4", "-o", run);
        Assert.True(exit == 0, stderr + stdout);
        Assert.Contains("base projections nf4 (double quant on)", stdout);
        using (var plan = JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "plan.json"))))
        {
            var strategy = plan.RootElement.GetProperty("candidates")[0].GetProperty("strategy");
            Assert.Equal("nf4", strategy.GetProperty("weights").GetString());
            Assert.True(strategy.GetProperty("double_quant").GetBoolean());
        }
        Assert.True(File.Exists(Path.Combine(run, "adapter", "adapter_model.safetensors")));

        // Contradicting flags: one line naming the flag and the folder's format, and no run folder.
        foreach (var (args, message) in new[]
        {
            (new[] { "--weights", "bf16" }, "--weights bf16: MODEL folder"),
            (new[] { "--double-quant", "off" }, "--double-quant off: MODEL folder"),
            (new[] { "--method", "pissa" }, "--method pissa: its initialisation is an SVD of the full-precision weight"),
        })
        {
            string refused = Path.Combine(tmp.Path, "refused");
            (exit, _, stderr) = CliHarness.Run(["train", nf4, "--steps", "1", "-o", refused, .. args]);
            Assert.Equal(1, exit);
            Assert.Contains(message, stderr);
            Assert.Contains("nf4 (bitsandbytes, double quant on)", stderr);
            Assert.Single(stderr.Trim().Split('\n'));
            Assert.False(Path.Exists(refused));
        }

        // A weight without its block scales: the error names the tensor and the file; the run folder the command made is gone.
        string weights = Path.Combine(nf4, "model.safetensors");
        const string Victim = "model.layers.2.mlp.up_proj.weight";
        using (var checkpoint = SafetensorsCheckpoint.Open(weights))
        {
            var entries = checkpoint.Tensors.Where(t => t.Name != Victim + ".absmax")
                .Select(t => SafetensorsTensorEntry.FromBytes(t.Name, t.DType, t.Shape, checkpoint.ReadBytes(t.Name))).ToList();
            SafetensorsWriter.WriteFile(weights + ".tmp", entries);
        }
        File.Move(weights + ".tmp", weights, overwrite: true);
        string broken = Path.Combine(tmp.Path, "broken");
        // No --data: the demo task is written into the run folder first, and goes with it.
        (exit, _, stderr) = CliHarness.Run("train", nf4, "--steps", "1", "-o", broken);
        Assert.Equal(1, exit);
        Assert.Contains($"{weights}: tensor '{Victim}'", stderr);
        Assert.Contains("absmax", stderr);
        Assert.False(Path.Exists(broken));
    }
}
