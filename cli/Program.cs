using System.CommandLine;
using QuantPeft.Cli.Commands;

namespace QuantPeft.Cli;

/// <summary>Entry point of <c>qpeft</c>: one verb per file under <c>Commands/</c>.</summary>
public static class Program
{
    /// <summary>Runs the command line; exit codes: 0 success, 1 user error, 2 internal error.</summary>
    public static int Main(string[] args) => BuildRoot().Parse(args).Invoke();

    /// <summary>The root command with every verb attached (also used by the CLI tests).</summary>
    public static RootCommand BuildRoot()
    {
        var root = new RootCommand("QuantPeft: memory-planned QLoRA / GaLore / LISA / LoRAM fine-tuning on one GPU or a CPU.");
        foreach (Command verb in Verbs.All())
            root.Add(verb);
        return root;
    }
}
