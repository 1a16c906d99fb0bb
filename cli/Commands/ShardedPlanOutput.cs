using System.CommandLine;
using QuantPeft.Formats.HuggingFace;
using QuantPeft.Formats;
using QuantPeft.Memory.Planning;
using QuantPeft.Memory.Presets;
using QuantPeft.Memory.Reports;
using QuantPeft.Memory.Reports.Handoff;

namespace QuantPeft.Cli.Commands;

/// <summary>
/// <c>qpeft plan --gpus N</c> (N ≥ 2): plans the run per GPU under FSDP full sharding, writes the report as a single-GPU
/// plan does, and with <c>--engine</c> writes the engine's config for the chosen candidate. Everything is rendered and
/// every target folder checked before the first file is written.
/// </summary>
internal static class ShardedPlanOutput
{
    public static int Run(ParseResult r, string model, ModelSpec spec, Workload workload, Budget budget, Constraints constraints,
        Objective objective, string format, int top, HandoffOptions handoff, string? outputFile)
    {
        ShardedPlan plan = ShardedPlanner.Plan(spec, handoff.Gpus, workload, budget, constraints, handoff.OffloadParams, objective, model);
        string text = format switch
        {
            "json" => ShardedPlanJson.Write(plan),
            "md" => ShardedPlanMarkdown.Write(plan, top),
            _ => ShardedPlanTable.Render(plan, top, ansi: outputFile is null && !Console.IsOutputRedirected),
        };

        var files = new List<(string Path, string Content)>();
        if (handoff.Engine is { } engine)
        {
            string config = handoff.EngineConfig!;
            ShardedCandidate chosen = plan.ChosenCandidate ?? throw new PlanningException(NothingFits(plan, config));
            files.AddRange(HandoffFiles.Render(engine, config, plan, chosen, BaseModel(model)));
            foreach (var (path, _) in files) RequireFolder(path, "--engine-config");
            if (outputFile is not null && files.Any(f => SamePath(f.Path, outputFile)))
                throw new PlanningException($"--engine-config {config}: the same file as -o {outputFile}");
        }
        if (outputFile is not null) RequireFolder(outputFile, "-o");

        HandoffFiles.Write(files);
        if (outputFile is not null) AtomicFile.WriteAllText(outputFile, text);
        else
        {
            r.InvocationConfiguration.Output.Write(text);
            if (format == "table")
                foreach (var (path, _) in files) r.InvocationConfiguration.Output.WriteLine($"wrote {handoff.Engine!.Value.Name()} config: {path}");
        }
        return CliRunner.Ok;
    }

    /// <summary>
    /// What the engine loads: a preset's Hugging Face repository, or the model folder given (a config.json's folder).
    /// </summary>
    private static string BaseModel(string model)
    {
        if (File.Exists(model)) return Path.GetDirectoryName(Path.GetFullPath(model))!;
        if (Directory.Exists(model)) return Path.GetFullPath(model).TrimEnd(Path.DirectorySeparatorChar);
        return PresetHubIds.Get(model)
            ?? throw new PlanningException($"MODEL {model}: no Hugging Face repository is recorded for this preset; pass the model's folder or config.json");
    }

    private static string NothingFits(ShardedPlan plan, string config)
    {
        string budget = plan.Budget.Vram is { } v ? $"{plan.Gpus} × {ByteSize.Format(v)}" : "the budget";
        ShardedCandidate? closest = plan.Candidates.FirstOrDefault();
        return closest is null
            ? $"--engine-config {config}: no candidate to write; nothing written"
            : $"--engine-config {config}: no candidate fits {budget} (closest: {closest.Describe()}; {closest.Overflows[0]}); nothing written";
    }

    private static void RequireFolder(string path, string flag)
    {
        string dir = Path.GetDirectoryName(Path.GetFullPath(path)) ?? ".";
        if (!Directory.Exists(dir)) throw new PlanningException($"{flag} {path}: directory '{dir}' does not exist");
    }

    private static bool SamePath(string a, string b) =>
        string.Equals(Path.GetFullPath(a), Path.GetFullPath(b), StringComparison.Ordinal);
}
