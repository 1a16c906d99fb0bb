using System.CommandLine;
using System.Globalization;
using QuantPeft.Formats;
using QuantPeft.Trainers.Export;
using QuantPeft.Trainers.Recipes;

namespace QuantPeft.Cli.Commands;

/// <summary>
/// <c>qpeft export ADAPTER_OR_RUN --model MODEL [--merge] -o DIR</c>: with <c>--merge</c> a merged bf16 model in
/// Hugging Face layout; without, the PEFT adapter validated against the model and copied.
/// </summary>
internal static class ExportCommand
{
    public static Command Create()
    {
        var adapter = new Argument<string>("adapter") { Description = "A PEFT adapter folder, or a run folder (its adapter/)" };
        var model = new Option<string?>("--model") { Description = "The base model folder the adapter was trained on (config.json, safetensors, tokenizer)" };
        var merge = new Option<bool>("--merge") { Description = "Fold the adapter into the base weights and write a bf16 model folder" };
        var maxShard = new Option<string>("--max-shard-size") { Description = "Largest weights file of a merged model, e.g. 5GB, 500MB, 2GiB or bytes", DefaultValueFactory = _ => "5GB" };
        var output = new Option<string?>("-o", "--output") { Description = "Output folder (must not exist or be empty)" };
        // The merge holds the whole model in bf16, so it stays on the host unless a device is asked for.
        var device = new Option<string>(DeviceOption.Name) { Description = "With --merge: auto | cpu | cuda | cuda:N, where the bf16 model is held while the adapter is added (default cpu: the whole model must fit)", DefaultValueFactory = _ => "cpu" };
        var command = new Command("export", "Export a trained adapter: merged into the base model (--merge) or as a validated PEFT adapter")
        {
            adapter, model, merge, maxShard, output, device,
        };
        command.SetAction(parse => CliRunner.Run(() =>
        {
            string modelFolder = parse.GetValue(model) ?? throw new QuantPeftException("--model: required; give the base model folder the adapter was trained on");
            string outFolder = parse.GetValue(output) ?? throw new QuantPeftException("-o: required; give the output folder");
            long shardBytes = ParseSize(parse.GetValue(maxShard)!);
            string onDevice = RunDevice.Resolve(parse.GetValue(device)!);
            string adapterFolder = PeftAdapterCopy.ResolveAdapter(parse.GetValue(adapter)!);
            var result = parse.GetValue(merge)
                ? MergedModelExport.Merge(adapterFolder, modelFolder, outFolder, shardBytes, TorchSharp.torch.device(onDevice))
                : PeftAdapterCopy.Copy(adapterFolder, modelFolder, outFolder);
            Console.WriteLine(result.MergedModules > 0
                ? $"merged {result.MergedModules} adapter modules into {modelFolder}: {result.Folder} ({result.WeightFiles.Count} weights file(s){(result.IndexFile is null ? "" : ", indexed")}, bf16)"
                : $"adapter {adapterFolder} fits {modelFolder}; copied to {result.Folder}");
            return CliRunner.Ok;
        }));
        return command;
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
