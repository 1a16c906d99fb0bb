using Spectre.Console;

namespace QuantPeft.Cli;

/// <summary>
/// A Spectre console over the current <see cref="Console.Out"/>. When output is redirected (a file, a pipe,
/// a test) Spectre assumes 80 columns and wraps tensor names mid-word; a wide fixed width keeps each row on
/// one line there.
/// </summary>
internal static class ConsoleFactory
{
    public static IAnsiConsole Create()
    {
        IAnsiConsole console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(Console.Out),
            Ansi = Console.IsOutputRedirected ? AnsiSupport.No : AnsiSupport.Detect,
        });
        if (Console.IsOutputRedirected) console.Profile.Width = 240;
        return console;
    }
}
