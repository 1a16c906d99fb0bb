using System.CommandLine;
using System.Diagnostics;
using QuantPeft.Trainers.Demo;
using QuantPeft.Trainers.Recipes;

namespace QuantPeft.Cli.Commands;

/// <summary><c>qpeft demo-pretrain -o DIR</c>: reproduces the built-in demo model from scratch.</summary>
internal static class DemoPretrainCommand
{
    public static Command Create()
    {
        var defaults = new DemoPretrainOptions();
        var output = new Option<string>("-o", "--output") { Description = "Folder to write config.json, model.safetensors and qpeft-tokenizer.json into", Required = true };
        var steps = new Option<int>("--steps") { Description = "Optimizer steps", DefaultValueFactory = _ => defaults.Steps };
        var seed = new Option<long>("--seed") { Description = "Seed of corpus, weights and batch order", DefaultValueFactory = _ => defaults.Seed };
        var device = DeviceOption.Create();
        var command = new Command("demo-pretrain", "Pre-train the built-in byte-level demo model on the synthetic demo corpus") { output, steps, seed, device };
        command.SetAction(parse => CliRunner.Run(() =>
        {
            int n = parse.GetValue(steps);
            if (n < 1) throw new Formats.QuantPeftException($"--steps: expected a positive integer, found {n}");
            var options = defaults with { Steps = n, Seed = parse.GetValue(seed), Device = RunDevice.Resolve(parse.GetValue(device)!) };
            var clock = Stopwatch.StartNew();
            double loss = DemoModel.Pretrain(parse.GetValue(output)!, options,
                (step, l) => Console.Out.WriteLine($"step {step}/{options.Steps}  loss {l:F4}  {clock.Elapsed.TotalSeconds:F0}s"));
            Console.Out.WriteLine($"final loss (mean of last 20 steps) {loss:F4}; {clock.Elapsed.TotalSeconds:F0}s; wrote {parse.GetValue(output)}");
            return CliRunner.Ok;
        }));
        return command;
    }
}
