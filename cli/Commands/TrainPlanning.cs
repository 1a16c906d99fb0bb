using System.CommandLine;
using QuantPeft.Formats.HuggingFace;
using QuantPeft.Memory.CostModel;
using QuantPeft.Memory.Planning;
using QuantPeft.Memory.Presets;
using QuantPeft.Memory.Reports;
using QuantPeft.Trainers.Recipes;
using TorchSharp;

namespace QuantPeft.Cli.Commands;

/// <summary>
/// How <c>qpeft train</c> gets its strategy from the planner: <c>--plan FILE</c> runs a saved plan's chosen
/// candidate; <c>--vram</c> / <c>--ram</c> plan for that budget with the knob flags the user gave fixed and the
/// rest searched; otherwise the knob flags (with their defaults) are priced as one fixed candidate. In every case
/// the trainer's strategy fields come from the chosen <see cref="Strategy"/> through <see cref="PlanOptions.Apply"/>.
/// </summary>
internal sealed class TrainPlanning
{
    // The train flags that are planner knobs; when given explicitly they are fixed in the search.
    private static readonly string[] KnobFlags =
        ["--method", "--weights", "--double-quant", "--rank", "--targets", "--optimizer", "--layerwise", "--checkpointing",
         "--lisa-layers", "--prune", "--attention", "--batch", "--chunked-loss"];

    private readonly Command _command;
    private readonly Option<string?> _plan = new("--plan") { Description = "Run the chosen candidate of a plan written by qpeft plan --format json (or a run folder's plan.json)" };
    private readonly Option<string?> _vram = new("--vram") { Description = "Device memory budget on cuda (e.g. 24GiB): plan the strategy, searching the knobs not given" };
    private readonly Option<string?> _ram = new("--ram") { Description = "Host memory budget (the device budget on cpu): plan the strategy, searching the knobs not given" };
    private readonly Option<string?> _deviceKind = new("--device-kind") { Description = "cuda|cpu: the memory the plan budgets (default: the kind of --device; must agree with it)" };
    private readonly Option<string?> _overhead = new("--overhead") { Description = "Runtime overhead the planner assumes (default per device kind)" };
    private readonly Option<string?> _objective = new("--objective") { Description = "quality|speed|memory: ranking when planning for a budget (default quality)" };
    private readonly Option<string?> _chunkedLoss = new("--chunked-loss") { Description = "on (the trainer always chunks its loss; off is refused)" };
    private readonly Option<string?> _measurePeak = new("--measure-peak") { Description = "Measure the training peak above a baseline taken before the model load and write it (JSON) to FILE; skips evaluation" };

    private TrainPlanning(Command command) => _command = command;

    /// <summary>Adds the planning flags to the train command.</summary>
    public static TrainPlanning AddTo(Command command)
    {
        var p = new TrainPlanning(command);
        foreach (Option o in new Option[] { p._plan, p._vram, p._ram, p._deviceKind, p._overhead, p._objective, p._chunkedLoss, p._measurePeak })
            command.Add(o);
        return p;
    }

    /// <summary>The file <c>--measure-peak</c> names, or null.</summary>
    public string? MeasurePeakFile(ParseResult parse) => parse.GetValue(_measurePeak);

    /// <summary>The model of a <c>--plan</c> when MODEL is not given and the plan names a model folder or a synthetic model; else null.</summary>
    public string? PlannedModelFolder(ParseResult parse)
    {
        if (parse.GetValue(_plan) is not { } file) return null;
        string model = SavedPlan.Read(file).Model;
        return Directory.Exists(model) || SyntheticModel.IsSynthetic(model) ? model : null;
    }

    /// <summary>
    /// Resolves the run's strategy and returns the options to train with and the plan (one chosen candidate) that
    /// the run folder records. <paramref name="flags"/> are the options as the flags and defaults set them.
    /// </summary>
    /// <exception cref="PlanningException">Bad budget or knob flags, a plan that does not fit or is for another model, or nothing fits the budget.</exception>
    public (FinetuneOptions Options, TrainingPlan Plan) Resolve(ParseResult parse, FinetuneOptions flags)
    {
        ModelSpec spec = ModelFolder.ReadSpec(flags.ModelFolder);
        string modelName = ModelFolder.Describe(flags.ModelFolder);
        if (parse.GetValue(_chunkedLoss) is { } chunked && !Knob.ParseSwitch(chunked, "--chunked-loss"))
            throw new PlanningException("--chunked-loss off: the trainer always computes a chunked loss");
        if (parse.GetValue(_plan) is { } file)
            return FromFile(parse, file, spec, modelName, flags);

        var budget = new Budget
        {
            DeviceKind = KindFor(parse.GetValue(_deviceKind), flags.Device),
            Vram = parse.GetValue(_vram) is { } vr ? ByteSize.Parse(vr, "--vram") : null,
            Ram = parse.GetValue(_ram) is { } ra ? ByteSize.Parse(ra, "--ram") : null,
            Overhead = parse.GetValue(_overhead) is { } oh ? ByteSize.Parse(oh, "--overhead") : null,
        };
        Objective objective = parse.GetValue(_objective) is { } ob ? Knob.ParseObjective(ob) : Objective.Quality;
        Workload workload = PlanOptions.ToWorkload(flags);
        bool searching = budget.Vram is not null || budget.Ram is not null;
        Constraints constraints = searching ? ExplicitKnobs(parse, flags) : Constraints.Fixed(PlanOptions.ToStrategy(flags));
        TrainingPlan plan = Planner.Plan(spec, workload, budget, constraints, objective, CostSettings.QuantPeft, modelName);
        Candidate chosen = plan.ChosenCandidate ?? throw NothingFits(plan, budget);
        return (PlanOptions.Apply(flags, chosen.Strategy, workload), OnlyChosen(plan, chosen));
    }

    /// <summary>Prices the strategy that <paramref name="options"/> already name (no budget): the plan a run folder records.</summary>
    public static TrainingPlan Price(FinetuneOptions options, DeviceKind? deviceKind = null)
    {
        ModelSpec spec = ModelFolder.ReadSpec(options.ModelFolder);
        var budget = new Budget { DeviceKind = deviceKind ?? RunDevice.KindOf(options.Device) };
        return Planner.Plan(spec, PlanOptions.ToWorkload(options), budget, Constraints.Fixed(PlanOptions.ToStrategy(options)),
            Objective.Quality, CostSettings.QuantPeft, ModelFolder.Describe(options.ModelFolder));
    }

    /// <summary>
    /// The planner's device kind for a run on <paramref name="device"/> (a resolved <c>--device</c>): its kind, which an
    /// explicit <c>--device-kind</c> may only repeat, so a CPU run is never planned or measured as a GPU run.
    /// </summary>
    /// <exception cref="PlanningException"><paramref name="deviceKindFlag"/> names the other kind.</exception>
    public static DeviceKind KindFor(string? deviceKindFlag, string device)
    {
        DeviceKind kind = RunDevice.KindOf(device);
        if (deviceKindFlag is not null && Knob.ParseDeviceKind(deviceKindFlag) != kind)
            throw new PlanningException($"--device-kind {deviceKindFlag.Trim()}: the run is on {device} (--device); the plan budgets the memory of the device the run uses, drop --device-kind or pick the other --device");
        return kind;
    }

    private (FinetuneOptions, TrainingPlan) FromFile(ParseResult parse, string file, ModelSpec spec, string modelName, FinetuneOptions flags)
    {
        foreach (string flag in KnobFlags.Append("--seq").Append("--grad-accum"))
            if (Given(parse, flag)) throw new PlanningException($"{flag}: --plan fixes the strategy and the workload; drop {flag} or re-plan");
        foreach (var (option, flag) in new[] { (_vram, "--vram"), (_ram, "--ram"), (_deviceKind, "--device-kind"), (_overhead, "--overhead"), (_objective, "--objective") })
            if (parse.GetValue(option) is not null) throw new PlanningException($"{flag}: --plan carries its own budget; drop {flag} or re-plan");
        SavedPlan saved = SavedPlan.Read(file);
        CheckModel(file, saved, spec, flags.ModelFolder);
        FinetuneOptions options = PlanOptions.Apply(flags, saved.Strategy, saved.Workload);
        // Re-price with today's cost model so the run folder records what this build predicts for the same plan.
        TrainingPlan plan = Planner.Plan(spec, saved.Workload, saved.Budget, Constraints.Fixed(saved.Strategy), saved.Objective, CostSettings.QuantPeft, modelName);
        return (options, plan.ChosenCandidate is { } c ? OnlyChosen(plan, c) : plan);
    }

    // The plan must be for this architecture: its parameter count always, and its shape when its model resolves here.
    private static void CheckModel(string file, SavedPlan saved, ModelSpec spec, string modelFolder)
    {
        if (saved.ParameterCount != spec.ParameterCount)
            throw new PlanningException($"{file}: parameter_count: the plan is for '{saved.Model}' ({saved.ParameterCount:N0} parameters), but MODEL '{modelFolder}' has {spec.ParameterCount:N0}");
        ModelSpec? planned = ModelPresets.Contains(saved.Model) ? ModelPresets.Get(saved.Model)
            : SyntheticModel.IsSynthetic(saved.Model) ? SyntheticModel.Parse(saved.Model).Spec
            : File.Exists(Path.Combine(saved.Model, ModelConfigReader.FileName)) ? ModelConfigReader.Read(Path.Combine(saved.Model, ModelConfigReader.FileName))
            : null;
        if (planned is null) return;
        var differences = new (string Field, long Plan, long Model)[]
        {
            ("num_hidden_layers", planned.NumLayers, spec.NumLayers), ("hidden_size", planned.HiddenSize, spec.HiddenSize),
            ("intermediate_size", planned.IntermediateSize, spec.IntermediateSize), ("num_attention_heads", planned.NumHeads, spec.NumHeads),
            ("num_key_value_heads", planned.NumKvHeads, spec.NumKvHeads), ("vocab_size", planned.VocabSize, spec.VocabSize),
        }.Where(d => d.Plan != d.Model).ToList();
        if (differences.Count > 0)
        {
            var (field, p, m) = differences[0];
            throw new PlanningException($"{file}: model: the plan is for '{saved.Model}' ({field} {p}), but MODEL '{modelFolder}' has {field} {m}");
        }
    }

    private Constraints ExplicitKnobs(ParseResult parse, FinetuneOptions flags)
    {
        var (weights, _) = Knob.ParseWeights(Knob.Name(flags.Weights, flags.LqLoraBits));
        // A pre-quantized folder fixes the weights (and double quant, LQ-LoRA's rank) whether or not the flags were
        // given, and the method: the search may not pick one that needs the full-precision weights.
        var stored = PrequantizedFolder.Read(flags.ModelFolder);
        bool fixedWeights = Given(parse, "--weights") || stored is not null;
        return new Constraints
        {
            Weights = fixedWeights ? weights : null,
            LqLoraBits = fixedWeights && weights == WeightFormat.LqLora ? flags.LqLoraBits : null,
            DoubleQuant = Given(parse, "--double-quant") ? flags.DoubleQuant
                : stored is not null ? flags.DoubleQuant && weights is WeightFormat.Nf4 or WeightFormat.Fp4 : null,
            Method = Given(parse, "--method") || stored is not null ? flags.Method : null,
            Rank = Given(parse, "--rank") || stored?.Weights == WeightFormat.LqLora ? flags.Rank : null,
            Targets = Given(parse, "--targets") ? PlanOptions.ToStrategy(flags with { Method = TrainingMethod.Lora }).Targets : null,
            Optimizer = Given(parse, "--optimizer") ? flags.Optimizer : null,
            Layerwise = Given(parse, "--layerwise") ? flags.Layerwise : null,
            Checkpointing = Given(parse, "--checkpointing") ? flags.Checkpointing : null,
            LisaLayers = Given(parse, "--lisa-layers") ? flags.LisaLayers : null,
            Prune = Given(parse, "--prune") ? flags.Prune : null,
            Attention = Given(parse, "--attention") ? PlanOptions.ToStrategy(flags).Attention : null,
            Batch = Given(parse, "--batch") ? flags.MicroBatchSize : null,
            ChunkedLoss = true,
        };
    }

    /// <summary>Whether <paramref name="flag"/> was given on the command line (not just its default).</summary>
    public bool IsGiven(ParseResult parse, string flag) => Given(parse, flag);

    private bool Given(ParseResult parse, string flag)
    {
        Option? option = _command.Options.FirstOrDefault(o => o.Name == flag);
        return option is not null && parse.GetResult(option) is { Implicit: false };
    }

    private static TrainingPlan OnlyChosen(TrainingPlan plan, Candidate chosen) => new()
    {
        Model = plan.Model, Spec = plan.Spec, Workload = plan.Workload, Budget = plan.Budget, Objective = plan.Objective,
        Candidates = [chosen],
    };

    private static PlanningException NothingFits(TrainingPlan plan, Budget budget)
    {
        string flag = budget.DeviceKind == DeviceKind.Cpu ? "--ram" : "--vram";
        Candidate? closest = plan.Candidates.FirstOrDefault();
        string why = closest is null ? "" : $"; the closest, {closest.Strategy.Describe()}: {closest.Overflows.FirstOrDefault()?.Message}";
        return new PlanningException($"{flag}: no strategy of the {plan.Candidates.Count} searched fits the budget{why}");
    }
}
