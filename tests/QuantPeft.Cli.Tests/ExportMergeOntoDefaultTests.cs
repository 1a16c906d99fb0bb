namespace QuantPeft.Cli.Tests;

/// <summary>
/// <c>qpeft export --merge</c> without <c>--merge-onto</c> (<c>auto</c>): a QLoRA run's adapter goes into the dequantized
/// 4-bit base it was trained against, exactly as <c>--merge-onto dequantized</c> with the run's format and double quant
/// writes it; a bf16 run's adapter goes into the original weights.
/// </summary>
public class ExportMergeOntoDefaultTests
{
    private static byte[] Weights(string folder) => File.ReadAllBytes(Path.Combine(folder, "model.safetensors"));

    private static (int Exit, string Out) Export(string run, string output, params string[] flags)
    {
        var (exit, stdout, stderr) = CliHarness.Run(["export", run, "--model", CliHarness.DemoModel(), "--merge", "-o", output, .. flags]);
        Assert.True(exit == 0, stderr + stdout);
        return (exit, stdout);
    }

    [Fact]
    public void AQloraRunMergesOntoItsDequantizedBaseAndABf16RunOntoTheOriginal()
    {
        using var tmp = new TempFolder();
        string qlora = Path.Combine(tmp.Path, "qlora"), bf16 = Path.Combine(tmp.Path, "bf16");
        foreach (var (run, weights) in new[] { (qlora, "nf4"), (bf16, "bf16") })
        {
            var (exit, stdout, stderr) = CliHarness.Run(["train", "--steps", "2", "--batch", "4", "--lr", "1e-1", "--weights", weights, "-o", run, .. TrainResumeCommandTests.SmallTask(tmp.Path)]);
            Assert.True(exit == 0, stderr + stdout);
        }
        string Out(string name) => Path.Combine(tmp.Path, name);

        var (_, said) = Export(qlora, Out("q-auto"));
        Assert.Contains("merge onto: the dequantized nf4 base (double quant)", said);
        Export(qlora, Out("q-deq"), "--merge-onto", "dequantized", "--base-weights", "nf4", "--double-quant");
        Export(qlora, Out("q-orig"), "--merge-onto", "original");
        Export(Path.Combine(qlora, "adapter"), Out("q-adapter-auto"));   // the run's adapter/ finds the run's plan.json too
        Assert.Equal(Weights(Out("q-deq")), Weights(Out("q-auto")));
        Assert.Equal(Weights(Out("q-deq")), Weights(Out("q-adapter-auto")));
        Assert.NotEqual(Weights(Out("q-orig")), Weights(Out("q-auto")));

        (_, said) = Export(bf16, Out("b-auto"));
        Assert.Contains("merge onto: the original weights", said);
        Export(bf16, Out("b-orig"), "--merge-onto", "original");
        Assert.Equal(Weights(Out("b-orig")), Weights(Out("b-auto")));
    }
}
