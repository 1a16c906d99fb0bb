using QuantPeft.Formats;

namespace QuantPeft.Cli;

/// <summary>
/// Maps exceptions to exit codes and one-line messages: user errors (bad files, flags, budgets) exit 1
/// with no stack trace; anything else is a bug and exits 2 with the trace on stderr.
/// </summary>
public static class CliRunner
{
    /// <summary>Exit code for success.</summary>
    public const int Ok = 0;
    /// <summary>Exit code for a user error.</summary>
    public const int UserError = 1;
    /// <summary>Exit code for an internal error.</summary>
    public const int InternalError = 2;

    /// <summary>Runs <paramref name="action"/> and turns its exceptions into exit codes.</summary>
    public static int Run(Func<int> action, TextWriter? stderr = null)
    {
        stderr ??= Console.Error;
        try
        {
            return action();
        }
        catch (Exception e) when (IsUserError(e))
        {
            stderr.WriteLine($"error: {e.Message}");
            return UserError;
        }
        catch (Exception e)
        {
            stderr.WriteLine($"internal error: {e}");
            return InternalError;
        }
    }

    private static bool IsUserError(Exception e) =>
        e is QuantPeftException or FileNotFoundException or DirectoryNotFoundException or UnauthorizedAccessException;
}
