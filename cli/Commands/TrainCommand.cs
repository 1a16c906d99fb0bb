using QuantPeft.Trainers.Training;
using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using QuantPeft.Formats;
using QuantPeft.Memory.Planning;
using QuantPeft.Memory.Planning.Methods;
using QuantPeft.Trainers.Model;
using QuantPeft.Trainers.Adapters;
using QuantPeft.Trainers.Data;
using QuantPeft.Trainers.Data.Demo;
using QuantPeft.Trainers.Demo;
using QuantPeft.Trainers.Recipes;
using QuantPeft.Trainers.Strategies;
using Spectre.Console;

namespace QuantPeft.Cli.Commands;

/// <summary>
/// <c>qpeft train [MODEL] [--data JSONL] …</c>: fine-tunes an adapter on a frozen (NF4 + double-quant by default)
/// base. With no arguments it trains the built-in demo model on the demo upper-casing task.
/// </summary>
internal static class TrainCommand
{
    public static Command Create()
    {
        var model = new Argument<string?>("model") { Description = "Model folder (config.json, model.safetensors or sharded, tokenizer), or synthetic:PRESET|CONFIG[@SEED] (generated weights, byte-level tokenizer); default: the built-in demo model", Arity = ArgumentArity.ZeroOrOne };
        var data = new Option<string?>("--data") { Description = "Training JSONL ({\"text\"}, {\"prompt\",\"completion\"} or {\"messages\"}); default: the demo task" };
        var eval = new Option<string?>("--eval") { Description = "Eval JSONL; default: 10% of --data held out" };
        var steps = new Option<int?>("--steps") { Description = "Optimizer steps" };
        var rank = new Option<int?>("--rank") { Description = "Adapter rank r" };
        var alpha = new Option<double?>("--alpha") { Description = "Adapter alpha (scaling alpha/r)" };
        var method = new Option<string>("--method") { Description = string.Join(" | ", MethodRegistry.All.Select(m => m.Name)), DefaultValueFactory = _ => "lora" };
        var weights = new Option<string>("--weights") { Description = "Base projection storage: nf4 | fp4 | int8 | bf16 | lq-lora:BITS (default: nf4 for adapter methods, bf16 for full, lisa, galore, natural-galore)" };
        var doubleQuant = new Option<string>("--double-quant") { Description = "on | off", DefaultValueFactory = _ => "on" };
        var targets = new Option<string>("--targets") { Description = "q,k,v,o,gate,up,down or all-linear", DefaultValueFactory = _ => "all-linear" };
        var optimizer = new Option<string?>("--optimizer") { Description = string.Join(" | ", Knob.OptimizerNames) + "; default: the method's (galore and natural-galore imply their own, the rest adamw)" };
        var checkpointing = new Option<string>("--checkpointing") { Description = "on | off: recompute each decoder block in backward", DefaultValueFactory = _ => "off" };
        var attention = new Option<string>("--attention") { Description = "fused | eager", DefaultValueFactory = _ => "fused" };
        var layerwise = new Option<string>("--layerwise") { Description = "on | off: optimizer in backward", DefaultValueFactory = _ => "off" };
        var lisaLayers = new Option<int?>("--lisa-layers") { Description = "LISA: decoder layers trained at a time (gamma; default 2 with --method lisa)" };
        var lisaInterval = new Option<int?>("--lisa-interval") { Description = "LISA: steps between samplings of the active layers (K)" };
        var prune = new Option<double?>("--prune") { Description = "LoRAM: structured pruning ratio in (0, 1) (default 0.65 with --method loram)" };
        var pruneCriterion = new Option<string>("--prune-criterion") { Description = "LoRAM: random | magnitude", DefaultValueFactory = _ => "random" };
        var saveEvery = new Option<int?>("--save-every") { Description = "Write a resumable checkpoint every N steps" };
        var resume = new Option<string?>("--resume") { Description = "Resume from a checkpoint folder" };
        var lr = new Option<double?>("--lr") { Description = "Peak learning rate; default: the method's (docs/strategies.md)" };
        var batch = new Option<int?>("--batch") { Description = "Rows per micro-batch" };
        var seq = new Option<int?>("--seq") { Description = "Tokens per row" };
        var accum = new Option<int?>("--grad-accum") { Description = "Micro-batches per optimizer step" };
        var seed = new Option<long?>("--seed") { Description = "Seed of adapter init, split and batch order" };
        var output = new Option<string?>("-o", "--output") { Description = "Run folder; default runs/<UTC timestamp>" };
        var device = DeviceOption.Create();
        var command = new Command("train", "Fine-tune an adapter (QLoRA by default); prints eval before/after and saves the adapter in PEFT format")
        {
            model, data, eval, steps, rank, alpha, method, weights, doubleQuant, targets, optimizer, checkpointing, attention, layerwise,
            lisaLayers, lisaInterval, prune, pruneCriterion, saveEvery, resume, lr, batch, seq, accum, seed, output, device,
        };
        var dataFlags = new DataFlags();
        dataFlags.AddTo(command);
        var planning = TrainPlanning.AddTo(command);
        var preference = PreferenceFlags.AddTo(command);
        command.SetAction(parse => CliRunner.Run(() =>
        {
            var defaults = new FinetuneOptions { ModelFolder = "", DataPath = "" };
            string? resumeFrom = parse.GetValue(resume);
            // A resumed run continues in its checkpoint's run folder unless -o names another.
            string runFolder = parse.GetValue(output)
                ?? (resumeFrom is null ? null : TrainingCheckpoint.RunFolderOf(TrainingCheckpoint.Resolve(resumeFrom)))
                ?? Path.Combine("runs", DateTime.UtcNow.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture));
            string modelFolder = parse.GetValue(model) ?? planning.PlannedModelFolder(parse) ?? DemoModel.ShippedFolder()
                ?? throw new QuantPeftException($"MODEL: no model folder given and the built-in demo model is missing from {Path.Combine(AppContext.BaseDirectory, DemoModel.FolderName)}");
            ModelFolder.Check(modelFolder);
            var trainingMethod = Knob.ParseMethod(parse.GetValue(method)!);
            var implied = MethodRegistry.Of(trainingMethod);
            // An absent --weights follows the method (bf16 for those that train the base itself); a given one is kept,
            // so a contradiction is still an error.
            var (weightFormat, lqBits) = planning.IsGiven(parse, "--weights")
                ? Knob.ParseWeights(parse.GetValue(weights)!) : (implied.ImpliedWeights, 0.0);
            var options = defaults with
            {
                ModelFolder = modelFolder,
                DataPath = parse.GetValue(data) ?? "",
                EvalPath = parse.GetValue(eval),
                Truncation = DataFlags.ParseTruncation(parse.GetValue(dataFlags.Truncation)!),
                Packing = DataFlags.ParsePacking(parse.GetValue(dataFlags.Packing)),
                ChatTemplate = parse.GetValue(dataFlags.ChatTemplate),
                Fields = parse.GetValue(dataFlags.Fields) ?? [],
                Method = trainingMethod,
                Weights = weightFormat,
                LqLoraBits = lqBits,
                DoubleQuant = Knob.ParseSwitch(parse.GetValue(doubleQuant)!, "--double-quant"),
                Targets = [parse.GetValue(targets)!],
                Optimizer = parse.GetValue(optimizer) is { } named ? Knob.ParseOptimizer(named) : MethodDefaults.Optimizer(trainingMethod),
                Checkpointing = Knob.ParseSwitch(parse.GetValue(checkpointing)!, "--checkpointing"),
                Attention = Knob.ParseAttention(parse.GetValue(attention)!) == AttentionKind.Eager ? AttentionImplementation.Eager : AttentionImplementation.Fused,
                Layerwise = Knob.ParseSwitch(parse.GetValue(layerwise)!, "--layerwise"),
                LisaLayers = parse.GetValue(lisaLayers) ?? implied.ImpliedLisaLayers,
                LisaInterval = parse.GetValue(lisaInterval) ?? defaults.LisaInterval,
                Prune = parse.GetValue(prune) ?? implied.ImpliedPrune,
                PruneCriterion = parse.GetValue(pruneCriterion)!.Trim().ToLowerInvariant(),
                SaveEvery = parse.GetValue(saveEvery) ?? defaults.SaveEvery,
                ResumeFrom = resumeFrom,
                RunFolder = runFolder,
                Steps = parse.GetValue(steps) ?? defaults.Steps,
                Rank = parse.GetValue(rank) ?? defaults.Rank,
                Alpha = parse.GetValue(alpha) ?? defaults.Alpha,
                LearningRate = parse.GetValue(lr) ?? MethodDefaults.LearningRate(trainingMethod),
                MicroBatchSize = parse.GetValue(batch) ?? defaults.MicroBatchSize,
                SequenceLength = parse.GetValue(seq) ?? defaults.SequenceLength,
                GradientAccumulation = parse.GetValue(accum) ?? defaults.GradientAccumulation,
                Seed = parse.GetValue(seed) ?? defaults.Seed,
                Preference = preference.Read(parse),
                Device = RunDevice.Resolve(parse.GetValue(device)!),
            };
            // A pre-quantized folder decides the weights format: flags left at their defaults take its values.
            options = PrequantizedOptions.Align(options, new PrequantizedOptions.Given(
                planning.IsGiven(parse, "--weights"), planning.IsGiven(parse, "--double-quant"), planning.IsGiven(parse, "--rank")));
            options.Validate();
            (options, var plan) = planning.Resolve(parse, options);
            // A budget search or a saved plan may pick another method; an absent --lr follows it.
            if (parse.GetValue(lr) is null) options = options with { LearningRate = MethodDefaults.LearningRate(options.Method) };
            options.Validate();
            PrequantizedOptions.Check(options);
            bool freshFolder = !Path.Exists(runFolder);
            try
            {
                if (options.DataPath.Length == 0)
                    options = options.Preference is null ? WriteDemoTask(options, runFolder) : PreferenceReport.WriteDemoTask(options, runFolder);
                if (planning.MeasurePeakFile(parse) is { } measure)
                    return MeasuredTraining.Run(options, runFolder, plan, measure, ConsoleFactory.Create());
                return Run(options, runFolder, ConsoleFactory.Create(), plan);
            }
            catch when (freshFolder && !File.Exists(Path.Combine(runFolder, "metrics.jsonl"))
                && !(Directory.Exists(runFolder) && Directory.EnumerateDirectories(runFolder, TrainingCheckpoint.Prefix + "*").Any()))
            {
                // Nothing was trained (the model or the data failed to load): the folder this command created holds only
                // its plan and demo data, so it goes rather than leave a run folder without a run.
                if (Directory.Exists(runFolder)) Directory.Delete(runFolder, recursive: true);
                throw;
            }
        }));
        return command;
    }

    internal static int Run(FinetuneOptions options, string runFolder, IAnsiConsole console, TrainingPlan? plan = null)
    {
        var clock = Stopwatch.StartNew();
        Directory.CreateDirectory(runFolder);
        plan ??= TrainPlanning.Price(options);
        RunPlanFile.Write(runFolder, plan, options);
        using var budget = RunBudget.Start(plan, runFolder);
        using var recipe = new FinetuneRecipe(options with { HeapGuard = true });
        recipe.Setup();
        budget.Between(recipe, "eval before");
        console.MarkupLine($"[bold]model[/] {Markup.Escape(options.ModelFolder)}: {recipe.Spec!.ParameterCount:N0} parameters; base projections {Knob.Name(options.Weights, options.LqLoraBits)}"
            + (options.Weights == WeightFormat.Bf16 ? "" : $" (double quant {(options.DoubleQuant ? "on" : "off")})") + $", {recipe.BaseProjectionBytes:N0} bytes");
        console.MarkupLine($"[bold]method[/] {Knob.Name(options.Method)} r={options.Rank} alpha={options.Alpha} on {recipe.Adapters.Count} projections: "
            + $"[bold]{recipe.TrainableParameters:N0}[/] trainable parameters");
        console.MarkupLine($"[bold]device[/] {recipe.Device}");
        if (recipe.Preference is { } pairs) PreferenceReport.PrintData(console, options, pairs);
        else console.MarkupLine($"[bold]data[/] {recipe.Data!.Stats.TrainRows} train rows, {recipe.Data.Stats.EvalRows} eval rows of {options.SequenceLength} tokens; {DataCounts(recipe.Data.Stats)}");

        var before = recipe.Evaluate();
        budget.Between(recipe, $"step {recipe.StartStep + 1}");
        string metricsPath = Path.Combine(runFolder, "metrics.jsonl");
        if (recipe.ResumedFrom is string checkpoint)
        {
            // The log keeps the steps up to the checkpoint; the resumed steps are appended after them.
            TrainingCheckpoint.ContinueMetrics(Path.Combine(TrainingCheckpoint.RunFolderOf(checkpoint), "metrics.jsonl"), metricsPath, recipe.StartStep);
            console.MarkupLine($"[bold]resumed[/] {Markup.Escape(checkpoint)} at step {recipe.StartStep} of {options.Steps}");
        }
        console.MarkupLine($"[bold]eval {(recipe.ResumedFrom is null ? "before" : "at resume")}[/] {Describe(before)}");
        using (var log = new MetricsWriter(metricsPath, append: recipe.ResumedFrom is not null))
        {
            if (recipe.ResumedFrom is null) log.Write(new EvalMetrics(0, before.Loss) { ExactMatch = before.ExactMatch, Preference = before.Preference });
            console.Progress().Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
                .Start(ctx =>
                {
                    var task = ctx.AddTask("training", maxValue: options.Steps);
                    task.Value = recipe.StartStep;
                    recipe.Train(log, r =>
                    {
                        task.Description = $"step {r.Step} loss {r.Loss:F3} {r.TokensPerSecond:F0} tok/s "
                            + (recipe.PeakDeviceBytes is long used ? $"{recipe.Device} peak {used / (1 << 20)} MiB" : $"rss {r.RssBytes / (1 << 20)} MiB");
                        task.Value = r.Step;
                        budget.Between(recipe, r.Step < options.Steps ? $"step {r.Step + 1}" : "eval after");
                    });
                });
            var after = recipe.Evaluate();
            budget.Between(recipe, "save");
            log.Write(new EvalMetrics(options.Steps, after.Loss) { ExactMatch = after.ExactMatch, Preference = after.Preference });
            console.MarkupLine($"[bold]eval after[/]  {Describe(after)}");
            bool wholeModel = FullParameterTraining.TrainsBaseWeights(options.Method);
            string adapter = Path.Combine(runFolder, wholeModel ? "model" : "adapter");
            recipe.Save(adapter);
            recipe.Pruning?.Save(Path.Combine(runFolder, QuantPeft.Trainers.Pruning.PruningPlan.FileName));
            LossCurvePlot.WriteFromMetrics(metricsPath, Path.Combine(runFolder, "loss.png"));
            budget.Between(recipe, "report");
            WriteReport(runFolder, options, recipe, before, after, clock.Elapsed, budget);
            if (recipe.Preference is not null) PreferenceReport.Append(runFolder, options, recipe, before, after);
            console.MarkupLine($"[bold]saved[/] {Markup.Escape(adapter)} ({(wholeModel ? "Hugging Face model" : "PEFT")}); peak {recipe.PeakBytes / (1 << 20)} MiB ({Markup.Escape(recipe.PeakSource)}); {clock.Elapsed.TotalSeconds:F0} s; report {Markup.Escape(Path.Combine(runFolder, "report.md"))}");
        }
        return CliRunner.Ok;
    }

    private static FinetuneOptions WriteDemoTask(FinetuneOptions options, string runFolder)
    {
        string folder = Path.Combine(runFolder, "data");
        (var train, var eval) = UpperCaseTask.Generate(options.Seed, DemoData.DefaultFinetuneTrain, DemoData.DefaultFinetuneEval);
        string trainPath = Path.Combine(folder, "finetune-train.jsonl"), evalPath = Path.Combine(folder, "finetune-eval.jsonl");
        JsonlDatasetWriter.Write(trainPath, train);
        JsonlDatasetWriter.Write(evalPath, eval);
        return options with { DataPath = trainPath, EvalPath = options.EvalPath ?? evalPath };
    }

    private static void WriteReport(string runFolder, FinetuneOptions o, FinetuneRecipe recipe, EvalResult before, EvalResult after, TimeSpan elapsed, RunBudget budget)
    {
        string Row(string name, EvalResult e) => $"| {name} | {e.Loss:F4} | {e.Perplexity:F3} | {(e.ExactMatch is double a ? $"{a:P1}" : "n/a")} |";
        var text = string.Join('\n',
            "# qpeft train report", "",
            $"- model: `{o.ModelFolder}` ({recipe.Spec!.ParameterCount:N0} parameters), base projections {Knob.Name(o.Weights, o.LqLoraBits)}"
                + (o.Weights == WeightFormat.Bf16 ? "" : $", double quant {(o.DoubleQuant ? "on" : "off")}") + $" ({recipe.BaseProjectionBytes:N0} bytes)",
            $"- method: {Knob.Name(o.Method)} r={o.Rank} alpha={o.Alpha} on {recipe.Adapters.Count} projections; trainable parameters: {recipe.TrainableParameters:N0}",
            $"- optimizer: {Knob.Name(o.Optimizer)}, lr {o.LearningRate} (cosine, warm-up {o.WarmupRatio:P0}), clip {o.MaxGradNorm}; {o.Steps} steps x {o.MicroBatchSize} rows x {o.GradientAccumulation} accumulation, seq {o.SequenceLength}",
            (recipe.Data is { } data
                ? $"- data: {data.Stats.TrainRows} train rows, {data.Stats.EvalRows} eval rows; {DataCounts(data.Stats)} (truncation {o.Truncation})"
                : "- data: preference pairs") + $"; chat template: {recipe.ChatTemplate!.Reason}",
            $"- device: {recipe.Device}; the run's own account of what it keeps there: base projections {recipe.BaseProjectionBytes:N0} bytes, "
                + $"optimizer states {recipe.CurrentOptimizer.StateBytes.Device:N0} bytes (+ {recipe.CurrentOptimizer.StateBytes.Host:N0} in host pages, {recipe.CurrentOptimizer.StateBytes.Disk:N0} on disk)",
            $"- measured peak: {recipe.PeakBytes / (1 << 20)} MiB ({recipe.PeakSource})"
                + (recipe.PeakDeviceBytes is null ? "" : $"; host peak RSS {recipe.PeakRssBytes / (1 << 20)} MiB"),
            budget.ReportLine(),
            $"- wall time: {elapsed.TotalSeconds:F1} s", "",
            "| eval | loss | perplexity | exact match |", "|---|---|---|---|",
            Row(recipe.ResumedFrom is null ? "before" : $"at resume (step {recipe.StartStep})", before), Row("after", after), "");
        File.WriteAllText(Path.Combine(runFolder, "report.md"), text);
    }

    private static string DataCounts(DatasetStats s) =>
        DataFlags.PackingLine(s) + $"; {s.Truncated} truncated, {s.Dropped} dropped" + (s.UntrainedTurns > 0 ? $", {s.UntrainedTurns} assistant turns the template renders differently once later turns follow, left untrained" : "");

    private static string Describe(EvalResult e) =>
        e.Preference is { } p ? PreferenceReport.Describe(e.Loss, p)
        : $"loss {e.Loss:F4}  perplexity {e.Perplexity:F3}" + (e.ExactMatch is double a ? $"  exact match {a:P1}" : "");
}
