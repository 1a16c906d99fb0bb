using System.CommandLine;
using System.Globalization;
using QuantPeft.Formats;
using QuantPeft.Trainers.Export;
using QuantPeft.Trainers.Recipes;
using QuantPeft.Trainers.Export.Gguf;
using Spectre.Console;

namespace QuantPeft.Cli.Commands;

/// <summary>
/// <c>qpeft export ADAPTER_OR_RUN --model MODEL [--merge] -o DIR</c>: with <c>--merge</c> a merged bf16 model in
/// Hugging Face layout; without, the PEFT adapter validated against the model and copied. With <c>--format gguf</c>: the
/// model (with the adapter merged, when one is given) as one llama.cpp GGUF file of <c>--quant</c> type.
/// </summary>
internal static class ExportCommand
{
    public static Command Create()
    {
        var adapter = new Argument<string?>("adapter") { Description = "A PEFT adapter folder, or a run folder (its adapter/); optional with --format gguf", Arity = ArgumentArity.ZeroOrOne };
        var model = new Option<string?>("--model") { Description = "The base model folder the adapter was trained on (config.json, safetensors, tokenizer)" };
        var merge = new Option<bool>("--merge") { Description = "Fold the adapter into the base weights and write a bf16 model folder" };
        var maxShard = new Option<string>("--max-shard-size") { Description = "Largest weights file of a merged model, e.g. 5GB, 500MB, 2GiB or bytes", DefaultValueFactory = _ => "5GB" };
        var format = new Option<string>("--format") { Description = "safetensors (a Hugging Face folder or PEFT adapter), gguf (one llama.cpp file) or gguf-lora (a llama.cpp LoRA adapter)", DefaultValueFactory = _ => "safetensors" };
        var quant = new Option<string>("--quant") { Description = $"GGUF matrix type: {string.Join(", ", GgufQuantTypes.Names)}", DefaultValueFactory = _ => "f16" };
        var onto = new Option<string>("--merge-onto") { Description = "auto: a 4-bit run's adapter into its dequantized training base (from the run's plan.json), anything else into the original weights; original: the checkpoint's weights; dequantized: the 4-bit base given by --base-weights, --double-quant", DefaultValueFactory = _ => "auto" };
        var baseWeights = new Option<string>("--base-weights") { Description = "With --merge-onto dequantized: the 4-bit format of the training base, nf4 or fp4", DefaultValueFactory = _ => "nf4" };
        var doubleQuant = new Option<bool>("--double-quant") { Description = "With --merge-onto dequantized: the training base had double-quantized block scales" };
        var output = new Option<string?>("-o", "--output") { Description = "Output folder (must not exist or be empty), or the .gguf file" };
        // The merge holds the whole model in bf16, so it stays on the host unless a device is asked for.
        var device = new Option<string>(DeviceOption.Name) { Description = "With --merge: auto | cpu | cuda | cuda:N, where the bf16 model is held while the adapter is added (default cpu: the whole model must fit)", DefaultValueFactory = _ => "cpu" };
        var rank = new Option<int?>("--rank") { Description = "A DyLoRA adapter at rank k ≤ its r: its first k rows and columns, exported as the LoRA of rank k (merged, PEFT or GGUF)" };
        var command = new Command("export", "Export a trained adapter: merged into the base model (--merge), as a validated PEFT adapter, or as a GGUF file (--format gguf)")
        {
            adapter, model, merge, maxShard, format, quant, onto, baseWeights, doubleQuant, output, device, rank,
        };
        command.SetAction(parse => CliRunner.Run(() =>
        {
            string modelFolder = parse.GetValue(model) ?? throw new QuantPeftException("--model: required; give the base model folder the adapter was trained on");
            string outFolder = parse.GetValue(output) ?? throw new QuantPeftException("-o: required; give the output folder");
            string? adapterArg = parse.GetValue(adapter);
            MergeBase? mergeBase = parse.GetValue(onto) switch
            {
                "auto" => adapterArg is null ? null : RunTrainingBase.Find(adapterArg),
                "original" => null,
                "dequantized" => new MergeBase(parse.GetValue(baseWeights) switch
                {
                    "nf4" => QuantPeft.Quant.Codecs.FourBitType.Nf4,
                    "fp4" => QuantPeft.Quant.Codecs.FourBitType.Fp4,
                    var w => throw new QuantPeftException($"--base-weights: expected nf4 or fp4, found '{w}'"),
                }, parse.GetValue(doubleQuant)),
                var o => throw new QuantPeftException($"--merge-onto: expected auto, original or dequantized, found '{o}'"),
            };
            // --rank: the DyLoRA adapter truncated to k stands in for the given one; checked before anything is written.
            using var truncated = parse.GetValue(rank) is int k
                ? TruncatedDylora.Create(PeftAdapterCopy.ResolveAdapter(adapterArg ?? throw new QuantPeftException("--rank: give the DyLoRA adapter or run folder to truncate")), k)
                : null;
            if (truncated is not null) adapterArg = truncated.Folder;
            if (adapterArg is not null && parse.GetValue(format) != "gguf-lora" && (parse.GetValue(merge) || parse.GetValue(format) == "gguf"))
                Console.WriteLine(mergeBase is null ? "merge onto: the original weights"
                    : $"merge onto: the dequantized {(mergeBase.QuantType == QuantPeft.Quant.Codecs.FourBitType.Nf4 ? "nf4" : "fp4")} base{(mergeBase.DoubleQuant ? " (double quant)" : "")}, as trained");
            switch (parse.GetValue(format))
            {
                case "gguf":
                    return Gguf(adapterArg is null ? null : PeftAdapterCopy.ResolveAdapter(adapterArg), modelFolder, GgufQuantTypes.Parse(parse.GetValue(quant)!), outFolder, mergeBase);
                case "gguf-lora":
                    var lora = GgufLoraExport.Write(PeftAdapterCopy.ResolveAdapter(adapterArg ?? throw new QuantPeftException("ADAPTER_OR_RUN: required with --format gguf-lora")), modelFolder, outFolder);
                    Console.WriteLine($"gguf-lora: {lora.Tensors} tensors, {lora.Bytes:N0} bytes → {lora.Path} (load with llama.cpp's --lora beside the base GGUF)");
                    return CliRunner.Ok;
                case "safetensors":
                    break;
                default:
                    throw new QuantPeftException($"--format: expected safetensors, gguf or gguf-lora; found '{parse.GetValue(format)}'");
            }
            long shardBytes = ParseSize(parse.GetValue(maxShard)!);
            string onDevice = RunDevice.Resolve(parse.GetValue(device)!);
            string adapterFolder = PeftAdapterCopy.ResolveAdapter(adapterArg ?? throw new QuantPeftException("ADAPTER_OR_RUN: required unless --format gguf; give the adapter or run folder"));
            var result = parse.GetValue(merge)
                ? MergedModelExport.Merge(adapterFolder, modelFolder, outFolder, shardBytes, mergeBase, TorchSharp.torch.device(onDevice))
                : PeftAdapterCopy.Copy(adapterFolder, modelFolder, outFolder);
            Console.WriteLine(result.MergedModules > 0
                ? $"merged {result.MergedModules} adapter modules into {modelFolder}: {result.Folder} ({result.WeightFiles.Count} weights file(s){(result.IndexFile is null ? "" : ", indexed")}, bf16)"
                : $"adapter {adapterFolder} fits {modelFolder}; copied to {result.Folder}");
            return CliRunner.Ok;
        }));
        return command;
    }

    private static int Gguf(string? adapterFolder, string model, GgufQuantType quant, string output, MergeBase? onto)
    {
        GgufExportResult result = null!;
        IAnsiConsole console = ConsoleFactory.Create();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        console.Progress().AutoClear(true).Start(ctx =>
        {
            ProgressTask task = ctx.AddTask("gguf");
            result = GgufExport.Write(model, adapterFolder, quant, output, onTensor: (i, n, name) =>
            {
                task.MaxValue = n;
                task.Value = i;
                task.Description = GgufQuantTypes.IsKQuant(quant) && i == n ? $"llama.cpp {GgufQuantTypes.Name(quant)}" : name;
            }, onto: onto);
        });
        string what = adapterFolder is null ? model : $"{model} + {adapterFolder} ({result.MergedModules} modules merged)";
        if (!model.StartsWith("synthetic:", StringComparison.Ordinal))
        {
            var template = QuantPeft.Trainers.Data.ChatTemplate.FromModelFolder(model);
            var (text, note) = OllamaModelfile.Build(Path.GetFileName(result.Path), template, template.Kind != QuantPeft.Trainers.Data.ChatTemplateKind.Default);
            string modelfile = OllamaModelfile.PathFor(result.Path);
            File.WriteAllText(modelfile, text);
            console.MarkupLineInterpolated($"Ollama: {modelfile}{(note is null ? "" : $" ({note})")}");
        }
        console.MarkupLineInterpolated($"gguf {GgufQuantTypes.Name(quant)}: {what} → {result.Path}: {result.Tensors} tensors, {result.Bytes:N0} bytes in {clock.Elapsed.TotalSeconds:0.0} s");
        return CliRunner.Ok;
    }

    // Hugging Face's convention: KB/MB/GB are powers of 1000, KiB/MiB/GiB powers of 1024.
    internal static long ParseSize(string text)
    {
        string t = text.Trim();
        (string Suffix, long Factor)[] units = [("KIB", 1L << 10), ("MIB", 1L << 20), ("GIB", 1L << 30), ("KB", 1000), ("MB", 1000_000), ("GB", 1000_000_000), ("B", 1)];
        long factor = 1;
        foreach (var (suffix, f) in units)
            if (t.EndsWith(suffix, StringComparison.OrdinalIgnoreCase))
            {
                (t, factor) = (t[..^suffix.Length].Trim(), f);
                break;
            }
        if (!double.TryParse(t, NumberStyles.Float, CultureInfo.InvariantCulture, out double value) || !(value > 0) || value * factor > long.MaxValue)
            throw new QuantPeftException($"--max-shard-size: expected a positive size such as 5GB, 500MB or 2GiB, found '{text}'");
        return Math.Max(1, (long)(value * factor));
    }
}
