namespace QuantPeft.Cli.Tests;

/// <summary>Phi-3 at the command line: targets that split a fused projection, and a GGUF llama.cpp would run without the window.</summary>
public class PhiCommandTests
{
    [Fact]
    public void Train_TargetsSplittingQkv_ExitOneNamingTargetsAndTheFusedProjection()
    {
        string dir = Directory.CreateTempSubdirectory("qpeft-phi").FullName;
        try
        {
            var (exit, stdout, stderr) = CliHarness.Run("train", "synthetic:phi-3-mini", "--targets", "q,v", "--steps", "1", "-o", Path.Combine(dir, "run"));
            Assert.Equal(1, exit);
            Assert.Contains("--targets", stderr);
            Assert.Contains("qkv_proj", stderr);
            Assert.False(Directory.Exists(Path.Combine(dir, "run", "adapter")), stdout);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void ExportGguf_Phi3Mini4kWindow_ExitsOneNamingSlidingWindow()
    {
        string dir = Directory.CreateTempSubdirectory("qpeft-phi").FullName;
        try
        {
            string file = Path.Combine(dir, "phi.gguf");
            var (exit, _, stderr) = CliHarness.Run("export", "--model", "synthetic:phi-3-mini", "--format", "gguf", "-o", file);
            Assert.Equal(1, exit);
            Assert.Contains("sliding_window 2047", stderr);
            Assert.False(File.Exists(file));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
