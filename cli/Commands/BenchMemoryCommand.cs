using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using QuantPeft.Formats;
using QuantPeft.Formats.HuggingFace;
using QuantPeft.Memory.CostModel;
using QuantPeft.Memory.Planning;
using QuantPeft.Memory.Reports;
using QuantPeft.Trainers.Recipes;

namespace QuantPeft.Cli.Commands;

/// <summary>
/// <c>qpeft bench-memory MODEL --strategies a,b,c --steps N [--batch B] [--seq S] [-o DIR] [--resume]</c>: prices each
/// strategy with the planner, trains it for N steps in a fresh process (<c>qpeft train --plan … --measure-peak …</c>),
/// and writes predicted vs measured peak with the error in % as Markdown, JSON and a bar chart (SVG and PNG).
/// </summary>
internal static class BenchMemoryCommand
{
    public const string MarkdownFile = "bench-memory.md";
    public const string JsonFile = "bench-memory.json";
    public const string SvgFile = "bench-memory.svg";
    public const string PngFile = "bench-memory.png";

    private static readonly Argument<string> Model = new("MODEL") { Description = "Model folder (config.json, model.safetensors, tokenizer)" };
    private static readonly Option<string> Strategies = new("--strategies") { Description = "Comma list of shorthands (lora-bf16, qlora, qlora-ckpt, galore, galore8-layerwise, lisa, loram, …) or knob strings starting with method= (method=lora,weights=nf4,dq=on,ckpt=on)", Required = true };
    private static readonly Option<string?> Steps = new("--steps") { Description = "Optimizer steps per strategy (default 3)" };
    private static readonly Option<string?> Batch = new("--batch") { Description = "Micro-batch size (default 1)" };
    private static readonly Option<string?> Seq = new("--seq") { Description = "Tokens per row (default 64)" };
    private static readonly Option<string?> DeviceKindOpt = new("--device-kind") { Description = "cuda|cpu: the device whose memory is read (default: the kind of --device; must agree with it)" };
    private static readonly Option<string> DeviceOpt = DeviceOption.Create();
    private static readonly Option<string?> Output = new("-o", "--output") { Description = "Output folder (default bench-memory/<UTC timestamp>)" };
    private static readonly Option<bool> Resume = new("--resume") { Description = "Keep the measurements already in the output folder: a strategy whose NN-name/peak.json exists is priced again but not run again" };

    public static Command Create()
    {
        var command = new Command("bench-memory", "Measure each strategy's peak memory in a fresh process beside the planner's prediction");
        command.Add(Model);
        foreach (Option o in new Option[] { Strategies, Steps, Batch, Seq, DeviceOpt, DeviceKindOpt, Output, Resume })
            command.Add(o);
        command.SetAction(r => CliRunner.Run(() => Execute(r, r.InvocationConfiguration.Output), r.InvocationConfiguration.Error));
        return command;
    }

    private static int Execute(ParseResult r, TextWriter stdout)
    {
        string model = r.GetValue(Model)!;
        IReadOnlyList<BenchStrategy> strategies = BenchStrategy.ParseList(r.GetValue(Strategies)!);
        int steps = r.GetValue(Steps) is { } st ? Knob.ParsePositiveInt(st, "--steps") : 3;
        int batch = r.GetValue(Batch) is { } b ? Knob.ParsePositiveInt(b, "--batch") : 1;
        int seq = r.GetValue(Seq) is { } s ? Knob.ParsePositiveInt(s, "--seq") : 64;
        string device = RunDevice.Resolve(r.GetValue(DeviceOpt)!);
        DeviceKind kind = TrainPlanning.KindFor(r.GetValue(DeviceKindOpt), device);
        string folder = r.GetValue(Output) ?? Path.Combine("bench-memory", DateTime.UtcNow.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture));
        ModelSpec spec = ModelFolder.ReadSpec(model);
        string modelPath = ModelFolder.Describe(model);

        // Price every strategy first, so a bad spelling or a contradiction fails before any training starts.
        var workload = new Workload(seq);
        var budget = new Budget { DeviceKind = kind };
        var plans = strategies.Select(x => Planner.Plan(spec, workload, budget, x.Constraints with { Batch = batch }, Objective.Quality, CostSettings.QuantPeft, modelPath)).ToList();

        Directory.CreateDirectory(folder);
        var rows = new List<BenchMemoryRow>();
        string source = "";
        for (int i = 0; i < strategies.Count; i++)
        {
            Candidate c = plans[i].ChosenCandidate!;
            string dir = Path.Combine(folder, $"{i + 1:00}-{Slug(strategies[i].Name)}");
            Directory.CreateDirectory(dir);
            string planPath = Path.Combine(dir, "plan.json"), peakPath = Path.Combine(dir, "peak.json");
            if (!r.GetValue(Resume)) File.Delete(peakPath);
            AtomicFile.WriteAllText(planPath, PlanJson.Write(plans[i]));
            bool reuse = r.GetValue(Resume) && File.Exists(peakPath);
            stdout.WriteLine($"[{i + 1}/{strategies.Count}] {strategies[i].Name}: {c.Strategy.Describe()}{(reuse ? " (measured before, kept)" : "")}");
            string? failure = reuse ? null : RunChild(["train", modelPath, "--plan", planPath, "--steps", steps.ToString(CultureInfo.InvariantCulture),
                "--measure-peak", peakPath, "--device", device, "-o", Path.Combine(dir, "run")], Path.Combine(dir, "train.log"));
            long overhead = c.Estimate.Device[MemoryComponent.RuntimeOverhead];
            long predicted = c.Estimate.PeakBytes - overhead;
            if (failure is null && File.Exists(peakPath))
            {
                using var doc = JsonDocument.Parse(File.ReadAllText(peakPath));
                var root = doc.RootElement;
                source = root.GetProperty("source").GetString() ?? "";
                rows.Add(new BenchMemoryRow(strategies[i].Name, c.Strategy.Describe(), predicted, overhead,
                    root.GetProperty("peak_above_baseline_bytes").GetInt64(), root.GetProperty("baseline_bytes").GetInt64(), null));
            }
            else rows.Add(new BenchMemoryRow(strategies[i].Name, c.Strategy.Describe(), predicted, overhead, null, null, failure ?? "no measurement written"));
        }

        var setup = new BenchMemorySetup(modelPath, spec.ParameterCount, kind, batch, seq, steps, source);
        string markdown = BenchMemoryReport.Markdown(setup, rows);
        string title = $"{Path.GetFileName(modelPath.TrimEnd('/'))}: predicted vs measured peak ({kind.ToString().ToLowerInvariant()}, b{batch} x s{seq})";
        AtomicFile.WriteAllText(Path.Combine(folder, MarkdownFile), markdown);
        AtomicFile.WriteAllText(Path.Combine(folder, JsonFile), BenchMemoryReport.Json(setup, rows));
        AtomicFile.WriteAllText(Path.Combine(folder, SvgFile), BenchMemoryChart.Svg(rows, title));
        AtomicFile.WriteAllBytes(Path.Combine(folder, PngFile), BenchMemoryChart.Png(rows, title));
        stdout.WriteLine();
        stdout.Write(markdown);
        stdout.WriteLine($"written: {Path.Combine(folder, MarkdownFile)}, {JsonFile}, {SvgFile}, {PngFile}");
        int failed = rows.Count(x => x.MeasuredBytes is null);
        if (failed > 0)
            throw new QuantPeftException($"--strategies: {failed} of {rows.Count} strategies produced no measurement (see {Path.Combine(folder, MarkdownFile)} and each train.log)");
        return CliRunner.Ok;
    }

    // Runs this same qpeft in a fresh process; returns null on success or the child's last error line.
    private static string? RunChild(IReadOnlyList<string> args, string logPath)
    {
        var (file, prefix) = SelfCommand();
        var info = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string a in prefix.Concat(args)) info.ArgumentList.Add(a);
        using var process = Process.Start(info) ?? throw new InvalidOperationException($"could not start {file}");
        var stderr = process.StandardError.ReadToEndAsync();
        string stdout = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        string err = stderr.Result;
        File.WriteAllText(logPath, stdout + err);
        if (process.ExitCode == 0) return null;
        string last = err.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).FirstOrDefault(l => l.StartsWith("error:", StringComparison.Ordinal) || l.StartsWith("internal error:", StringComparison.Ordinal))
            ?? $"exit code {process.ExitCode}";
        return last;
    }

    // The apphost next to qpeft.dll when there is one, otherwise the dotnet host running the dll.
    private static (string File, string[] Prefix) SelfCommand()
    {
        string dll = typeof(BenchMemoryCommand).Assembly.Location;
        string apphost = Path.Combine(Path.GetDirectoryName(dll)!, Path.GetFileNameWithoutExtension(dll) + (OperatingSystem.IsWindows() ? ".exe" : ""));
        if (File.Exists(apphost)) return (apphost, []);
        string host = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } h ? h
            : Environment.ProcessPath is { } p && Path.GetFileNameWithoutExtension(p) == "dotnet" ? p : "dotnet";
        return (host, ["exec", dll]);
    }

    private static string Slug(string name) =>
        new string(name.Select(ch => char.IsAsciiLetterOrDigit(ch) || ch is '-' or '.' ? ch : '_').ToArray()).Trim('_');
}
