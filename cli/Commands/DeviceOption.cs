using System.CommandLine;
using QuantPeft.Trainers.Recipes;

namespace QuantPeft.Cli.Commands;

/// <summary><c>--device auto|cpu|cuda|cuda:N</c>, shared by every verb that runs the model (resolved by <see cref="RunDevice"/>).</summary>
internal static class DeviceOption
{
    public const string Name = "--device";

    public static Option<string> Create() => new(Name)
    {
        Description = "auto | cpu | cuda | cuda:N: where the model, adapters and optimizer states live (auto: the first CUDA device when libtorch sees one, else the CPU)",
        DefaultValueFactory = _ => RunDevice.Auto,
    };
}
