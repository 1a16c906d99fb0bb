using System.Text;

[assembly: CollectionBehavior(DisableTestParallelization = true)]

namespace QuantPeft.Cli.Tests;

/// <summary>Runs <c>qpeft</c> in-process with captured stdout and stderr (tests run one at a time).</summary>
internal static class CliHarness
{
    /// <summary>The committed demo model folder copied next to the tests.</summary>
    public static string DemoModel() =>
        QuantPeft.Trainers.Demo.DemoModel.ShippedFolder() ?? throw new InvalidOperationException("the demo model is not next to the tests");

    public static (int Exit, string Out, string Err) Run(params string[] args)
    {
        var stdout = new StringWriter(new StringBuilder());
        var stderr = new StringWriter(new StringBuilder());
        TextWriter oldOut = Console.Out, oldErr = Console.Error;
        Console.SetOut(stdout);
        Console.SetError(stderr);
        try
        {
            int exit = Program.Main(args);
            return (exit, stdout.ToString(), stderr.ToString());
        }
        finally
        {
            Console.SetOut(oldOut);
            Console.SetError(oldErr);
        }
    }

}

/// <summary>A fresh temporary folder, deleted with everything in it when disposed.</summary>
internal sealed class TempFolder : IDisposable
{
    public TempFolder()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "qpeft-cli-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); }
        catch (IOException) { }
    }
}
