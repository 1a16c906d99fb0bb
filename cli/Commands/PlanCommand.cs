using System.CommandLine;
using QuantPeft.Formats.HuggingFace;
using QuantPeft.Formats;
using QuantPeft.Memory.CostModel;
using QuantPeft.Memory.Planning;
using QuantPeft.Memory.Presets;
using QuantPeft.Memory.Reports;
using QuantPeft.Trainers.Recipes;

namespace QuantPeft.Cli.Commands;

/// <summary>
/// <c>qpeft plan MODEL [knobs] --format table|md|json|html [-o FILE] [--gpus N --engine axolotl|accelerate --engine-config FILE]</c>:
/// plan a fine-tuning run that fits a memory budget, on one GPU or sharded over several and handed to a multi-GPU engine.
/// </summary>
internal static class PlanCommand
{
    private static readonly Argument<string> Model = new("MODEL") { Description = "A preset name (e.g. llama-2-7b) or a path to a config.json / model folder" };
    private static readonly Option<string?> Weights = new("--weights") { Description = "bf16|int8|nf4|fp4|lq-lora:BITS (searched when absent)" };
    private static readonly Option<string?> DoubleQuant = new("--double-quant") { Description = "on|off (4-bit formats)" };
    private static readonly Option<string?> Method = new("--method") { Description = "full|lora|pissa|osora|vera|dora|lisa|galore|natural-galore|loram" };
    private static readonly Option<string?> Rank = new("--rank") { Description = "Adapter rank or GaLore projection rank" };
    private static readonly Option<string?> Targets = new("--targets") { Description = "all-linear|attn|mlp|q,k,v,o,gate,up,down" };
    private static readonly Option<string?> Optimizer = new("--optimizer") { Description = "adamw|adamw-8bit|paged-adamw|paged-adamw-8bit|galore|galore-8bit|natural-galore" };
    private static readonly Option<string?> Layerwise = new("--layerwise") { Description = "on|off: optimizer in backward" };
    private static readonly Option<string?> Checkpointing = new("--checkpointing") { Description = "on|off: activation checkpointing" };
    private static readonly Option<string?> LisaLayers = new("--lisa-layers") { Description = "LISA: layers trained at a time (γ)" };
    private static readonly Option<string?> Prune = new("--prune") { Description = "LoRAM: structured pruning ratio, e.g. 0.85" };
    private static readonly Option<string?> Attention = new("--attention") { Description = "fused|eager" };
    private static readonly Option<string?> ChunkedLoss = new("--chunked-loss") { Description = "on|off (default on)" };
    private static readonly Option<string?> Batch = new("--batch") { Description = "Micro-batch size (searched when absent)" };
    private static readonly Option<string?> Seq = new("--seq") { Description = "Sequence length (default 2048, capped at the model's maximum)" };
    private static readonly Option<string?> GradAccum = new("--grad-accum") { Description = "Gradient accumulation steps (default 1)" };
    private static readonly Option<string?> Overhead = new("--overhead") { Description = "Runtime overhead, e.g. 768MiB; 0 compares with allocated-only figures" };
    private static readonly Option<string?> DeviceKindOpt = new("--device-kind") { Description = "cuda|cpu (default cuda)" };
    private static readonly Option<string?> Vram = new("--vram") { Description = "Device memory budget, e.g. 24GiB" };
    private static readonly Option<string?> Ram = new("--ram") { Description = "Host memory budget (paged optimizer states; the device budget on cpu)" };
    private static readonly Option<string?> ObjectiveOpt = new("--objective") { Description = "quality|speed|memory (default quality)" };
    private static readonly Option<string?> Format = new("--format") { Description = "table|md|json|html (default table)" };
    private static readonly Option<string?> Top = new("--top") { Description = "Candidates shown in table/md/html (default 15)" };
    private static readonly Option<string?> OutputFile = new("-o", "--output") { Description = "Write the report to FILE (atomically) instead of stdout" };
    private static readonly Option<string?> Gpus = new("--gpus") { Description = "GPUs to shard over with FSDP (default 1; 2 or more prices each GPU under full sharding, --vram per GPU)" };
    private static readonly Option<string?> Engine = new("--engine") { Description = "axolotl|accelerate: write the chosen plan as that engine's config (needs --gpus 2+ and --engine-config)" };
    private static readonly Option<string?> EngineConfig = new("--engine-config") { Description = "FILE to write the engine's config to (accelerate: also FILE-stem.training-args.json beside it)" };
    private static readonly Option<string?> OffloadParams = new("--offload-params") { Description = "on|off: FSDP CPU offload of parameters, gradients and optimizer states (searched when absent; --gpus 2+)" };

    public static Command Create()
    {
        var command = new Command("plan", "Plan a fine-tuning run that fits a memory budget; every knob not given is searched.");
        command.Add(Model);
        foreach (Option o in new Option[] { Weights, DoubleQuant, Method, Rank, Targets, Optimizer, Layerwise, Checkpointing, LisaLayers,
                     Prune, Attention, ChunkedLoss, Batch, Seq, GradAccum, Overhead, DeviceKindOpt, Vram, Ram, ObjectiveOpt, Format, Top, OutputFile,
                     Gpus, Engine, EngineConfig, OffloadParams })
            command.Add(o);
        command.SetAction(result => CliRunner.Run(() => Execute(result), result.InvocationConfiguration.Error));
        return command;
    }

    private static int Execute(ParseResult r)
    {
        string? V(Option<string?> o) => r.GetValue(o);
        string model = r.GetValue(Model) ?? throw new PlanningException("MODEL: expected a preset name or a config path");
        ModelSpec spec = ResolveModel(model);

        var constraints = new Constraints
        {
            Weights = V(Weights) is { } w ? Knob.ParseWeights(w).Format : null,
            LqLoraBits = V(Weights) is { } wb && Knob.ParseWeights(wb).Format == WeightFormat.LqLora ? Knob.ParseWeights(wb).Bits : null,
            DoubleQuant = V(DoubleQuant) is { } dq ? Knob.ParseSwitch(dq, "--double-quant") : null,
            Method = V(Method) is { } m ? Knob.ParseMethod(m) : null,
            Rank = V(Rank) is { } rk ? Knob.ParsePositiveInt(rk, "--rank") : null,
            Targets = V(Targets) is { } t ? Knob.ParseTargets(t) : null,
            Optimizer = V(Optimizer) is { } o ? Knob.ParseOptimizer(o) : null,
            Layerwise = V(Layerwise) is { } lw ? Knob.ParseSwitch(lw, "--layerwise") : null,
            Checkpointing = V(Checkpointing) is { } ck ? Knob.ParseSwitch(ck, "--checkpointing") : null,
            LisaLayers = V(LisaLayers) is { } g ? Knob.ParsePositiveInt(g, "--lisa-layers") : null,
            Prune = V(Prune) is { } p ? Knob.ParseRatio(p) : null,
            Attention = V(Attention) is { } a ? Knob.ParseAttention(a) : null,
            ChunkedLoss = V(ChunkedLoss) is { } cl ? Knob.ParseSwitch(cl, "--chunked-loss") : null,
            Batch = V(Batch) is { } b ? Knob.ParsePositiveInt(b, "--batch") : null,
        };
        constraints = WithStoredWeights(model, constraints);
        int seq = V(Seq) is { } s ? Knob.ParsePositiveInt(s, "--seq") : Math.Min(2048, spec.MaxPositionEmbeddings);
        var workload = new Workload(seq, V(GradAccum) is { } ga ? Knob.ParsePositiveInt(ga, "--grad-accum") : 1);
        var budget = new Budget
        {
            DeviceKind = V(DeviceKindOpt) is { } dk ? Knob.ParseDeviceKind(dk) : DeviceKind.Cuda,
            Vram = V(Vram) is { } vr ? ByteSize.Parse(vr, "--vram") : null,
            Ram = V(Ram) is { } ra ? ByteSize.Parse(ra, "--ram") : null,
            Overhead = V(Overhead) is { } oh ? ByteSize.Parse(oh, "--overhead") : null,
        };
        Objective objective = V(ObjectiveOpt) is { } ob ? Knob.ParseObjective(ob) : Objective.Quality;
        string format = (V(Format) ?? "table").Trim().ToLowerInvariant();
        if (format is not ("table" or "md" or "json" or "html"))
            throw new PlanningException($"--format: expected table, md, json or html; found '{V(Format)}'");
        int top = V(Top) is { } tp ? Knob.ParsePositiveInt(tp, "--top") : 15;
        if (HandoffOptions.Parse(V(Gpus), V(Engine), V(EngineConfig), V(OffloadParams), format) is { } handoff)
            return ShardedPlanOutput.Run(r, model, spec, workload, budget, constraints, objective, format, top, handoff, V(OutputFile));

        TrainingPlan plan = Planner.Plan(spec, workload, budget, constraints, objective, CostSettings.QuantPeft, model);
        string text = format switch
        {
            "json" => PlanJson.Write(plan),
            "md" => PlanMarkdown.Write(plan, top),
            "html" => PlanHtml.Write(plan, top),
            _ => PlanTable.Render(plan, top, ansi: V(OutputFile) is null && !Console.IsOutputRedirected),
        };
        if (V(OutputFile) is { } file) AtomicFile.WriteAllText(file, text);
        else r.InvocationConfiguration.Output.Write(text);
        return CliRunner.Ok;
    }

    /// <summary>
    /// A pre-quantized folder (bitsandbytes 4-bit, LQ-LoRA) fixes the base's format, double quantization and LQ-LoRA's
    /// rank, as <c>qpeft train</c> on it does: its full-precision weights are not there to be stored any other way.
    /// A flag that says otherwise is an error naming the flag and what the folder holds.
    /// </summary>
    private static Constraints WithStoredWeights(string model, Constraints c)
    {
        if (!Directory.Exists(model) || PrequantizedFolder.Read(model) is not { } stored) return c;
        string holds = $"MODEL '{model}' holds {stored.Describe()}";
        bool lq = stored.Weights == WeightFormat.LqLora;
        if (c.Weights is { } w && (w != stored.Weights
            || (lq && c.LqLoraBits is { } bits && Math.Abs(bits - stored.LqLoraBits) > 5e-4 && Math.Abs(bits - stored.LqLoraBudget) > 5e-4)))
            throw new PlanningException($"--weights {Knob.Name(w, c.LqLoraBits ?? 0)}: {holds}; a pre-quantized base is planned in its stored format");
        if (!lq && c.DoubleQuant is { } dq && dq != stored.DoubleQuant)
            throw new PlanningException($"--double-quant {(dq ? "on" : "off")}: {holds}");
        if (lq && c.Rank is { } r && r != stored.LqLoraRank)
            throw new PlanningException($"--rank {r}: {holds}; its LoRA starts from the stored rank-{stored.LqLoraRank} factors");
        return c with
        {
            Weights = stored.Weights,
            LqLoraBits = lq ? stored.LqLoraBits : null,
            DoubleQuant = lq ? c.DoubleQuant : stored.DoubleQuant,
            Rank = lq ? stored.LqLoraRank : c.Rank,
        };
    }

    private static ModelSpec ResolveModel(string model)
    {
        if (ModelPresets.Contains(model)) return ModelPresets.Get(model);
        // A config.json or a model folder; anything else is looked up as a preset (whose error lists the names).
        if (File.Exists(model) || Directory.Exists(model)) return ModelConfigReader.Read(model);
        return ModelPresets.Get(model);
    }
}
