namespace QuantPeft.Cli.Tests;

/// <summary><c>qpeft export --format gguf</c> from the command line: the file, and bad input that leaves nothing behind.</summary>
public class ExportGgufCommandTests
{
    [Fact]
    public void WritesAGgufFileOfThePlainDemoModel()
    {
        using var dir = new TempFolder();
        string file = Path.Combine(dir.Path, "demo.gguf");
        var r = CliHarness.Run("export", "--model", CliHarness.DemoModel(), "--format", "gguf", "--quant", "q8_0", "-o", file);
        Assert.Equal(0, r.Exit);
        Assert.Contains("gguf q8_0", r.Out);
        byte[] head = File.ReadAllBytes(file)[..8];
        Assert.Equal("GGUF"u8.ToArray(), head[..4]);
        Assert.Equal(3, BitConverter.ToInt32(head, 4));
        // The Ollama Modelfile beside it: FROM the file; the demo model declares no chat template, so no TEMPLATE, and the console says so.
        string modelfile = Path.Combine(dir.Path, "demo.Modelfile");
        Assert.Equal(2, Directory.GetFiles(dir.Path).Length);
        Assert.Equal("FROM ./demo.gguf\n", File.ReadAllText(modelfile));
        Assert.Contains("no chat_template", r.Out);
    }

    [Fact]
    public void KQuantsGoThroughLlamaCppsQuantizerAndLeaveNoIntermediateFile()
    {
        using var dir = new TempFolder();
        string file = Path.Combine(dir.Path, "demo.gguf");
        var r = CliHarness.Run("export", "--model", CliHarness.DemoModel(), "--format", "gguf", "--quant", "q4_k_m", "-o", file);
        Assert.True(r.Exit == 0, r.Err);
        long f16Bytes = 1_781_696;   // the demo model's f16 file
        Assert.InRange(new FileInfo(file).Length, 100_000, f16Bytes / 2);
        Assert.Equal(["demo.Modelfile", "demo.gguf"], Directory.GetFiles(dir.Path).Select(Path.GetFileName).Order(StringComparer.Ordinal));
    }

    [Theory]
    [InlineData("--quant", "q3_k_s", "error: --quant")]
    [InlineData("--format", "onnx", "error: --format")]
    public void BadFlagsExitOneAndWriteNothing(string flag, string value, string message)
    {
        using var dir = new TempFolder();
        string file = Path.Combine(dir.Path, "demo.gguf");
        string[] format = flag == "--format" ? [] : ["--format", "gguf"];
        var r = CliHarness.Run(["export", "--model", CliHarness.DemoModel(), .. format, flag, value, "-o", file]);
        Assert.Equal(1, r.Exit);
        Assert.StartsWith(message, r.Err);
        Assert.Empty(Directory.GetFileSystemEntries(dir.Path));
    }

    [Fact]
    public void AnExistingOutputIsRefusedAndKept()
    {
        using var dir = new TempFolder();
        string file = Path.Combine(dir.Path, "demo.gguf");
        File.WriteAllText(file, "keep");
        var r = CliHarness.Run("export", "--model", CliHarness.DemoModel(), "--format", "gguf", "-o", file);
        Assert.Equal(1, r.Exit);
        Assert.Contains(file, r.Err);
        Assert.Equal("keep", File.ReadAllText(file));
        Assert.Single(Directory.GetFileSystemEntries(dir.Path));
    }
}
