using System.CommandLine;
using QuantPeft.Quant.Checkpoints;
using Spectre.Console;

namespace QuantPeft.Cli.Commands;

/// <summary><c>qpeft quantize MODEL --format nf4|fp4|int8 [--blocksize N] [--double-quant] -o DIR</c>.</summary>
internal static class QuantizeCommand
{
    public static Command Create()
    {
        var model = new Argument<string>("model") { Description = "A Hugging Face model folder (config.json + safetensors)" };
        var format = new Option<string>("--format") { Description = "nf4, fp4 or int8 (bitsandbytes layouts)", Required = true };
        var blockSize = new Option<int>("--blocksize") { Description = "Elements per absmax block for 4-bit formats (power of two, 32..4096)", DefaultValueFactory = _ => 64 };
        var doubleQuant = new Option<bool>("--double-quant") { Description = "Quantize the 4-bit absmax too (QLoRA's double quantization)" };
        var output = new Option<string>("--output", "-o") { Description = "Output folder (must not exist or be empty)", Required = true };
        var shard = new Option<long>("--max-shard-bytes") { Description = "Largest safetensors shard", DefaultValueFactory = _ => 5_000_000_000L };
        var command = new Command("quantize", "Write a bitsandbytes-quantized copy of a model that transformers can load") { model, format, blockSize, doubleQuant, output, shard };
        command.SetAction(parse => CliRunner.Run(() =>
        {
            var options = new QuantizeOptions(CheckpointFormats.Parse(parse.GetValue(format)!), parse.GetValue(blockSize), parse.GetValue(doubleQuant));
            QuantizeSummary summary = null!;
            IAnsiConsole console = ConsoleFactory.Create();
            console.Progress().AutoClear(true).Start(ctx =>
            {
                ProgressTask task = ctx.AddTask("quantizing");
                summary = CheckpointQuantizer.Run(parse.GetValue(model)!, parse.GetValue(output)!, options, parse.GetValue(shard),
                    (name, i, n) => { task.MaxValue = n; task.Value = i; task.Description = name.Length > 48 ? "…" + name[^47..] : name; });
            });
            console.MarkupLineInterpolated($"quantized {summary.QuantizedTensors} weights, copied {summary.CopiedTensors} tensors: {summary.InputBytes:N0} → {summary.OutputBytes:N0} bytes in {summary.OutputFolder}");
            return CliRunner.Ok;
        }));
        return command;
    }
}
