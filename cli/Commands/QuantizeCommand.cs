using System.CommandLine;
using QuantPeft.Quant;
using QuantPeft.Quant.Checkpoints;
using Spectre.Console;

namespace QuantPeft.Cli.Commands;

/// <summary>
/// <c>qpeft quantize MODEL --format nf4|fp4|int8 [--blocksize N] [--double-quant] -o DIR</c>, or
/// <c>qpeft quantize MODEL --method lq-lora --bits B --rank R [--blocksize N] [--iterations K] -o DIR</c>.
/// </summary>
internal static class QuantizeCommand
{
    public static Command Create()
    {
        var model = new Argument<string>("model") { Description = "A Hugging Face model folder (config.json + safetensors)" };
        var format = new Option<string?>("--format") { Description = "nf4, fp4 or int8 (bitsandbytes layouts); or use --method" };
        var method = new Option<string?>("--method") { Description = "lq-lora: W ≈ Q + L1·L2 with per-matrix bit widths under an average budget" };
        var bits = new Option<double?>("--bits") { Description = "lq-lora: average bits per quantized weight, e.g. 3 or 2.75" };
        var rank = new Option<int?>("--rank") { Description = "lq-lora: rank of the low-rank factors L1, L2" };
        var iterations = new Option<int>("--iterations") { Description = "lq-lora: at most this many decomposition rounds per matrix", DefaultValueFactory = _ => 100 };
        var blockSize = new Option<int>("--blocksize") { Description = "Elements per absmax block (power of two; 32..4096 for 4-bit formats, 16..4096 for lq-lora)", DefaultValueFactory = _ => 64 };
        var doubleQuant = new Option<bool>("--double-quant") { Description = "Quantize the 4-bit absmax too (QLoRA's double quantization)" };
        var output = new Option<string>("--output", "-o") { Description = "Output folder (must not exist or be empty)", Required = true };
        var shard = new Option<long>("--max-shard-bytes") { Description = "Largest safetensors shard", DefaultValueFactory = _ => 5_000_000_000L };
        var command = new Command("quantize", "Write a quantized copy of a model: bitsandbytes layouts transformers can load, or LQ-LoRA")
            { model, format, method, bits, rank, iterations, blockSize, doubleQuant, output, shard };
        command.SetAction(parse => CliRunner.Run(() =>
        {
            string? methodName = parse.GetValue(method), formatName = parse.GetValue(format);
            if (methodName is null)
            {
                if (formatName is null) throw new QuantInputException("--format or --method is required: --format nf4|fp4|int8, or --method lq-lora");
                if (parse.GetValue(bits) is not null || parse.GetValue(rank) is not null)
                    throw new QuantInputException("--bits and --rank apply to --method lq-lora only");
                return Bitsandbytes(parse.GetValue(model)!, parse.GetValue(output)!, parse.GetValue(shard),
                    new QuantizeOptions(CheckpointFormats.Parse(formatName), parse.GetValue(blockSize), parse.GetValue(doubleQuant)));
            }
            if (!string.Equals(methodName, LqLoraQuantizationConfig.Method, StringComparison.OrdinalIgnoreCase))
                throw new QuantInputException($"--method '{methodName}' is not a quantization method; expected {LqLoraQuantizationConfig.Method}");
            if (formatName is not null) throw new QuantInputException("--format and --method lq-lora cannot be combined (LQ-LoRA chooses NF2/NF3/NF4/NF8 per matrix)");
            if (parse.GetValue(doubleQuant)) throw new QuantInputException("--double-quant applies to --format only (LQ-LoRA always quantizes its scales)");
            double budget = parse.GetValue(bits) ?? throw new QuantInputException("--bits is required with --method lq-lora (average bits per quantized weight)");
            int r = parse.GetValue(rank) ?? throw new QuantInputException("--rank is required with --method lq-lora (rank of L1 and L2)");
            return LqLora(parse.GetValue(model)!, parse.GetValue(output)!, parse.GetValue(shard),
                new LqLoraOptions(budget, r, parse.GetValue(blockSize), parse.GetValue(iterations)));
        }));
        return command;
    }

    private static int Bitsandbytes(string model, string output, long shard, QuantizeOptions options)
    {
        QuantizeSummary summary = null!;
        IAnsiConsole console = ConsoleFactory.Create();
        console.Progress().AutoClear(true).Start(ctx =>
        {
            ProgressTask task = ctx.AddTask("quantizing");
            summary = CheckpointQuantizer.Run(model, output, options, shard, (name, i, n) => Report(task, name, i, n));
        });
        console.MarkupLineInterpolated($"quantized {summary.QuantizedTensors} weights, copied {summary.CopiedTensors} tensors: {summary.InputBytes:N0} → {summary.OutputBytes:N0} bytes in {summary.OutputFolder}");
        return CliRunner.Ok;
    }

    private static int LqLora(string model, string output, long shard, LqLoraOptions options)
    {
        LqLoraSummary summary = null!;
        IAnsiConsole console = ConsoleFactory.Create();
        console.Progress().AutoClear(true).Start(ctx =>
        {
            ProgressTask task = ctx.AddTask("lq-lora");
            summary = LqLoraCheckpointWriter.Run(model, output, options, shard, (name, i, n) => Report(task, name, i, n));
        });
        var byBits = summary.Matrices.Values.GroupBy(m => m.Config.Bits).OrderBy(g => g.Key).Select(g => $"NF{g.Key}×{g.Count()}");
        string mix = string.Join(", ", byBits);
        console.MarkupLineInterpolated(
            $"lq-lora: {summary.Matrices.Count} weights ({mix}), {summary.Allocation.AverageBitsPerParameter:0.####} bits/weight (budget {options.BitsBudget}), rank {options.Rank}, copied {summary.CopiedTensors} tensors: {summary.OutputBytes:N0} bytes in {summary.OutputFolder}");
        return CliRunner.Ok;
    }

    private static void Report(ProgressTask task, string name, int i, int n)
    {
        task.MaxValue = n;
        task.Value = i;
        task.Description = name.Length > 48 ? "…" + name[^47..] : name;
    }
}
