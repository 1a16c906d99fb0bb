using System.CommandLine;
using System.Text.Json;
using QuantPeft.Cli;

namespace QuantPeft.Cli.Tests.Commands;

public sealed class PlanCommandTests
{
    private static (int Code, string Out, string Err) Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int code = Program.BuildRoot().Parse(args).Invoke(new InvocationConfiguration { Output = output, Error = error });
        return (code, output.ToString(), error.ToString());
    }

    [Fact]
    public void JsonOutputHasCandidatesAndChosen()
    {
        var (code, stdout, _) = Run("plan", "llama-2-7b", "--method", "lora", "--weights", "nf4", "--batch", "1",
            "--vram", "24GiB", "--format", "json");
        Assert.Equal(0, code);
        using var doc = JsonDocument.Parse(stdout);
        Assert.True(doc.RootElement.GetProperty("candidates").GetArrayLength() > 1);
        Assert.Equal(0, doc.RootElement.GetProperty("chosen").GetInt32());
    }

    [Fact]
    public void EveryKnobFixedGivesOneCandidate()
    {
        var (code, stdout, _) = Run("plan", "llama-2-7b", "--weights", "nf4", "--double-quant", "on", "--method", "lora", "--rank", "16",
            "--targets", "q,k,v,o", "--optimizer", "paged-adamw-8bit", "--layerwise", "off", "--checkpointing", "on",
            "--attention", "fused", "--batch", "2", "--seq", "1024", "--grad-accum", "4", "--overhead", "0", "--device-kind", "cuda",
            "--vram", "24GB", "--ram", "32GB", "--objective", "memory", "--format", "json");
        Assert.Equal(0, code);
        using var doc = JsonDocument.Parse(stdout);
        Assert.Equal(1, doc.RootElement.GetProperty("candidates").GetArrayLength());
        Assert.Equal("attn", doc.RootElement.GetProperty("candidates")[0].GetProperty("strategy").GetProperty("targets").GetString());
    }

    [Fact]
    public void TableOutputUsesSpectreTables()
    {
        var (code, stdout, _) = Run("plan", "tinyllama-1.1b", "--method", "lora", "--vram", "8GiB", "--top", "3");
        Assert.Equal(0, code);
        Assert.Contains("base_weights", stdout);
        Assert.Contains("strategy", stdout);
    }

    [Theory]
    [InlineData("--vram", "lots", "--vram")]
    [InlineData("--method", "magic", "--method")]
    [InlineData("--vram", "100MiB", "--overhead")]
    [InlineData("--format", "pdf", "--format")]
    [InlineData("--targets", "q,x", "--targets")]
    public void BadInputExitsOneNamingTheFlag(string flag, string value, string named)
    {
        var (code, _, stderr) = Run("plan", "llama-2-7b", flag, value);
        Assert.Equal(1, code);
        Assert.Contains(named, stderr);
    }

    [Fact]
    public void ContradictoryKnobsExitOneNamingTheFlags()
    {
        var (code, _, stderr) = Run("plan", "llama-2-7b", "--method", "full", "--weights", "nf4");
        Assert.Equal(1, code);
        Assert.Contains("--method", stderr);
        Assert.Contains("--weights", stderr);
    }

    [Theory]
    [InlineData("qwen3-32b", "32,762,123,264 parameters")]
    [InlineData("gemma-3-27b", "27,009,346,304 parameters")]
    [InlineData("phi-4", "14,659,507,200 parameters")]
    public void NewFamilyPresets_AnswerWhatFitsIn24GiB(string preset, string parameters)
    {
        var (code, stdout, _) = Run("plan", preset, "--vram", "24GiB");
        Assert.Equal(0, code);
        Assert.Contains(parameters, stdout);
        // The ranked table's first row is a candidate that fits.
        string first = stdout.Split('\n').First(l => l.StartsWith("│ 0 ", StringComparison.Ordinal));
        Assert.Contains("│ yes ", first);
    }

    [Fact]
    public void UnknownPresetExitsOneListingPresets()
    {
        var (code, _, stderr) = Run("plan", "gpt-5");
        Assert.Equal(1, code);
        Assert.Contains("qwen2.5-72b", stderr);
    }

    [Fact]
    public void OutputFileIsWrittenAtomically()
    {
        string dir = Directory.CreateTempSubdirectory("qpeft-cli").FullName;
        try
        {
            string path = Path.Combine(dir, "plan.html");
            var (code, stdout, _) = Run("plan", "tinyllama-1.1b", "--method", "lora", "--vram", "8GiB", "--format", "html", "-o", path);
            Assert.Equal(0, code);
            Assert.Equal("", stdout);
            Assert.Contains("<svg", File.ReadAllText(path));
            Assert.Single(Directory.GetFiles(dir));
            var (bad, _, _) = Run("plan", "tinyllama-1.1b", "--vram", "lots", "-o", Path.Combine(dir, "bad.md"));
            Assert.Equal(1, bad);
            Assert.Single(Directory.GetFiles(dir));
        }
        finally { Directory.Delete(dir, recursive: true); }
    }
}
