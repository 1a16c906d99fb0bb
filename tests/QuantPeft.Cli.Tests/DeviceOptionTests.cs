using System.Text.Json;
using QuantPeft.Memory.Planning;
using QuantPeft.Trainers.Recipes;

namespace QuantPeft.Cli.Tests;

/// <summary><c>--device</c> on the verbs that run the model, and the planner's device kind following it.</summary>
public class DeviceOptionTests
{
    private static readonly CudaReport NoGpu = new(false, 0);
    private static readonly CudaReport TwoGpus = new(true, 2);

    [Theory]
    [InlineData("auto", false, "cpu")]
    [InlineData("auto", true, "cuda:0")]
    [InlineData("CPU", true, "cpu")]
    [InlineData("cuda", true, "cuda:0")]
    [InlineData(" cuda:1 ", true, "cuda:1")]
    public void TheDeviceResolvesToWhatLibtorchReports(string flag, bool gpus, string expected) =>
        Assert.Equal(expected, RunDevice.Resolve(flag, cuda: gpus ? TwoGpus : NoGpu));

    [Theory]
    [InlineData("cuda:2", "libtorch reports 2 CUDA device(s) (cuda:0 to cuda:1)")]
    [InlineData("gpu", "--device: expected auto, cpu, cuda or cuda:N, found 'gpu'")]
    [InlineData("cuda:-1", "expected auto, cpu, cuda or cuda:N")]
    public void ADeviceThatIsNotThereIsRefused(string flag, string message) =>
        Assert.Contains(message, Assert.Throws<RecipeException>(() => RunDevice.Resolve(flag, cuda: TwoGpus)).Message);

    [Fact]
    public void ThePlannersDeviceKindIsTheRunsNotCudasPresence()
    {
        Assert.Equal(DeviceKind.Cpu, RunDevice.KindOf(RunDevice.Resolve("cpu", cuda: TwoGpus)));
        Assert.Equal(DeviceKind.Cuda, RunDevice.KindOf(RunDevice.Resolve("auto", cuda: TwoGpus)));
        Assert.Equal(DeviceKind.Cpu, RunDevice.KindOf(RunDevice.Resolve("auto", cuda: NoGpu)));
    }

    // This build's libtorch is the CPU one: asking for CUDA fails before anything is written, with one line that names the
    // flag, what libtorch reported and how to get a CUDA build.
    [Theory]
    [InlineData("train", "cuda")]
    [InlineData("train", "cuda:1")]
    [InlineData("bench-memory", "cuda")]
    [InlineData("export", "cuda")]
    [InlineData("generate", "cuda")]
    [InlineData("chat", "cuda:0")]
    [InlineData("demo-pretrain", "cuda")]
    public void AskingForCudaOnACpuBuildExitsOneWithTheBackendHint(string verb, string device)
    {
        using var tmp = new TempFolder();
        string output = Path.Combine(tmp.Path, "out");
        string[] args = verb switch
        {
            "train" => ["train", "--steps", "1", "--device", device, "-o", output],
            "bench-memory" => ["bench-memory", CliHarness.DemoModel(), "--strategies", "qlora", "--device", device, "-o", output],
            "generate" => ["generate", CliHarness.DemoModel(), "--prompt", "hi", "--device", device],
            "chat" => ["chat", CliHarness.DemoModel(), "--device", device],
            "demo-pretrain" => ["demo-pretrain", "--steps", "1", "--device", device, "-o", output],
            _ => ["export", tmp.Path, "--model", CliHarness.DemoModel(), "--merge", "--device", device, "-o", output],
        };
        var (exit, _, stderr) = CliHarness.Run(args);
        Assert.Equal(1, exit);
        Assert.Single(stderr.Trim().Split('\n'));
        Assert.Contains($"--device {device}: libtorch reports no CUDA device (cuda.is_available() = false, device_count() = 0)", stderr);
        Assert.Contains("-p:TorchBackend=cuda-linux", stderr);
        Assert.False(Directory.Exists(output));
    }

    [Fact]
    public void ADeviceKindThatContradictsTheDeviceIsRefused()
    {
        using var tmp = new TempFolder();
        var (exit, _, stderr) = CliHarness.Run("train", "--device", "cpu", "--device-kind", "cuda", "--steps", "1", "-o", Path.Combine(tmp.Path, "run"));
        Assert.Equal(1, exit);
        Assert.Contains("--device-kind cuda: the run is on cpu (--device)", stderr);
        Assert.Single(stderr.Trim().Split('\n'));
    }

    [Fact]
    public void ACpuRunIsPlannedMeasuredAndReportedAsACpuRun()
    {
        using var tmp = new TempFolder();
        string run = Path.Combine(tmp.Path, "run");
        var (exit, stdout, stderr) = CliHarness.Run(["train", "--device", "auto", "--steps", "2", "--batch", "4", "-o", run, .. TrainResumeCommandTests.SmallTask(tmp.Path)]);
        Assert.True(exit == 0, stderr + stdout);
        Assert.Contains("device cpu", stdout);
        using var plan = JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "plan.json")));
        Assert.Equal("cpu", plan.RootElement.GetProperty("budget").GetProperty("device_kind").GetString());
        var steps = File.ReadLines(Path.Combine(run, "metrics.jsonl")).Select(l => JsonDocument.Parse(l).RootElement)
            .Where(e => e.TryGetProperty("loss", out _)).ToList();
        Assert.Equal(2, steps.Count);
        Assert.All(steps, s => Assert.Equal("cpu RSS", s.GetProperty("peak_source").GetString()));
        string report = File.ReadAllText(Path.Combine(run, "report.md"));
        Assert.Contains("- device: cpu", report);
        Assert.Contains("(cpu RSS)", report);
    }
}
