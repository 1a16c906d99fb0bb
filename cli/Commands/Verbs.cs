using System.CommandLine;

namespace QuantPeft.Cli.Commands;

/// <summary>The list of verbs; each lives in its own file.</summary>
internal static class Verbs
{
    public static IEnumerable<Command> All()
    {
        yield return PlanCommand.Create();
        yield return QuantizeCommand.Create();
        yield return InspectCommand.Create();
        yield return DemoPretrainCommand.Create();
        yield return TrainCommand.Create();
        yield return BenchMemoryCommand.Create();
        yield return ExportCommand.Create();
        yield return DataCommand.Create();
    }
}
