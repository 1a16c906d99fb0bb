using System.Text.Json;
using QuantPeft.Trainers.Demo;

namespace QuantPeft.Cli.Tests.Commands;

public class BenchMemoryCommandTests
{
    [Fact]
    public void TwoStrategiesOnTheDemoModelWriteTableJsonAndChart()
    {
        using var tmp = new TempFolder();
        string demo = DemoModel.ShippedFolder() ?? throw new InvalidOperationException("the demo model is not next to the tests");
        string output = Path.Combine(tmp.Path, "bench");
        var (exit, stdout, stderr) = CliHarness.Run("bench-memory", demo, "--strategies", "qlora,method=lora,weights=bf16,ckpt=on",
            "--steps", "1", "--batch", "2", "--seq", "32", "--device-kind", "cpu", "-o", output);
        Assert.True(exit == 0, stderr + stdout);

        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(output, "bench-memory.json")));
        var rows = json.RootElement.GetProperty("strategies").EnumerateArray().ToList();
        Assert.Equal(["qlora", "method=lora,weights=bf16,ckpt=on"], rows.Select(r => r.GetProperty("name").GetString()));
        foreach (var r in rows)
        {
            // Each strategy ran in its own process and measured something above its baseline.
            Assert.True(r.GetProperty("measured_bytes").GetInt64() > 0);
            Assert.True(r.GetProperty("baseline_bytes").GetInt64() > 0);
            Assert.True(r.GetProperty("predicted_bytes").GetInt64() > 0);
            Assert.Equal(JsonValueKind.Number, r.GetProperty("error_percent").ValueKind);
        }
        Assert.Contains("nf4+dq", rows[0].GetProperty("summary").GetString());
        Assert.Contains("ckpt", rows[1].GetProperty("summary").GetString());
        Assert.Equal(2, json.RootElement.GetProperty("batch").GetInt32());

        string markdown = File.ReadAllText(Path.Combine(output, "bench-memory.md"));
        Assert.Contains("| qlora |", markdown);
        Assert.Contains(markdown.Split('\n')[2], stdout);
        Assert.Contains("<svg", File.ReadAllText(Path.Combine(output, "bench-memory.svg")));
        byte[] png = File.ReadAllBytes(Path.Combine(output, "bench-memory.png"));
        Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, png[..4]);
        // Each process warmed the runtime with one step of its strategy on a small synthetic model before its baseline.
        var peaks = Directory.GetFiles(output, "peak.json", SearchOption.AllDirectories);
        Assert.Equal(2, peaks.Length);
        foreach (string peak in peaks)
        {
            using var p = JsonDocument.Parse(File.ReadAllText(peak));
            Assert.StartsWith("one step of the same strategy", p.RootElement.GetProperty("warm_up").GetString());
        }
        // Each fresh process got the plan the bench priced.
        using var plan = JsonDocument.Parse(File.ReadAllText(Path.Combine(output, "01-qlora", "run", "plan.json")));
        Assert.Equal("nf4", plan.RootElement.GetProperty("candidates")[0].GetProperty("strategy").GetProperty("weights").GetString());
    }

    [Fact]
    public void AnUnknownStrategyFailsBeforeAnyTraining()
    {
        using var tmp = new TempFolder();
        string output = Path.Combine(tmp.Path, "bench");
        var (exit, _, stderr) = CliHarness.Run("bench-memory", DemoModel.ShippedFolder()!, "--strategies", "qlora,qlorax", "-o", output);
        Assert.Equal(1, exit);
        Assert.Contains("--strategies: unknown strategy 'qlorax'", stderr);
        Assert.False(Directory.Exists(output));
    }

    [Fact]
    public void ResumeKeepsAMeasurementAlreadyThereAndPricesItAgain()
    {
        using var tmp = new TempFolder();
        string output = Path.Combine(tmp.Path, "bench");
        Directory.CreateDirectory(Path.Combine(output, "01-qlora"));
        File.WriteAllText(Path.Combine(output, "01-qlora", "peak.json"),
            """{ "source": "earlier run", "baseline_bytes": 1000, "peak_above_baseline_bytes": 123456789 }""");
        var (exit, stdout, stderr) = CliHarness.Run("bench-memory", DemoModel.ShippedFolder()!, "--strategies", "qlora",
            "--device-kind", "cpu", "-o", output, "--resume");
        Assert.True(exit == 0, stderr + stdout);
        Assert.Contains("(measured before, kept)", stdout);
        Assert.False(Directory.Exists(Path.Combine(output, "01-qlora", "run"))); // no training process ran
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(output, "bench-memory.json")));
        var row = json.RootElement.GetProperty("strategies")[0];
        Assert.Equal(123456789, row.GetProperty("measured_bytes").GetInt64());
        Assert.True(row.GetProperty("predicted_bytes").GetInt64() > 0);
        Assert.True(File.Exists(Path.Combine(output, "01-qlora", "plan.json")));
    }
}
