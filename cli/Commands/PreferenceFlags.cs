using System.CommandLine;
using QuantPeft.Formats;
using QuantPeft.Memory.Planning;
using QuantPeft.Trainers.Loss;
using QuantPeft.Trainers.Recipes;

namespace QuantPeft.Cli.Commands;

/// <summary><c>qpeft train</c>'s preference flags: <c>--task sft|dpo|orpo</c> and the DPO/ORPO settings.</summary>
internal sealed class PreferenceFlags
{
    private readonly Option<string> _task = new("--task") { Description = "sft | dpo | orpo: supervised fine-tuning, or preference tuning on {prompt|messages, chosen, rejected} pairs", DefaultValueFactory = _ => "sft" };
    private readonly Option<double?> _beta = new("--beta") { Description = "DPO: beta, how far the policy may move from the reference (default 0.1)" };
    private readonly Option<double?> _labelSmoothing = new("--label-smoothing") { Description = "DPO: assumed share of flipped labels in [0, 0.5) (default 0)" };
    private readonly Option<string> _dpoLoss = new("--dpo-loss") { Description = "DPO: sigmoid | ipo", DefaultValueFactory = _ => "sigmoid" };
    private readonly Option<double?> _orpoLambda = new("--orpo-lambda") { Description = "ORPO: weight of the odds-ratio term (default 0.1)" };
    private readonly Option<string> _referenceCache = new("--reference-cache") { Description = "DPO: on | off: compute the reference log-probabilities once before training instead of in every step", DefaultValueFactory = _ => "off" };

    /// <summary>Adds the flags to <paramref name="command"/>.</summary>
    public static PreferenceFlags AddTo(Command command)
    {
        var flags = new PreferenceFlags();
        foreach (var option in new Option[] { flags._task, flags._beta, flags._labelSmoothing, flags._dpoLoss, flags._orpoLambda, flags._referenceCache })
            command.Options.Add(option);
        return flags;
    }

    /// <summary>The preference settings given, or null for <c>--task sft</c>.</summary>
    /// <exception cref="QuantPeftException">A flag's value is unknown, or a preference flag is given with <c>--task sft</c>.</exception>
    public PreferenceOptions? Read(ParseResult parse)
    {
        string task = parse.GetValue(_task)!.Trim().ToLowerInvariant();
        bool Given(Option o) => parse.GetResult(o) is { Implicit: false };
        if (task == "sft")
        {
            foreach (var o in new Option[] { _beta, _labelSmoothing, _dpoLoss, _orpoLambda, _referenceCache })
                if (Given(o)) throw new QuantPeftException($"{o.Name}: only applies to --task dpo or orpo");
            return null;
        }
        var kind = task switch
        {
            "dpo" => TrainingTask.Dpo,
            "orpo" => TrainingTask.Orpo,
            _ => throw new QuantPeftException($"--task: expected sft, dpo or orpo; found '{task}'"),
        };
        var dpoOnly = new Option[] { _beta, _labelSmoothing, _dpoLoss, _referenceCache };
        if (kind == TrainingTask.Orpo && dpoOnly.FirstOrDefault(Given) is { } o1) throw new QuantPeftException($"{o1.Name}: only applies to --task dpo");
        if (kind == TrainingTask.Dpo && Given(_orpoLambda)) throw new QuantPeftException("--orpo-lambda: only applies to --task orpo");
        var defaults = new PreferenceOptions();
        var options = new PreferenceOptions
        {
            Task = kind,
            Beta = parse.GetValue(_beta) ?? defaults.Beta,
            LabelSmoothing = parse.GetValue(_labelSmoothing) ?? defaults.LabelSmoothing,
            Loss = parse.GetValue(_dpoLoss)!.Trim().ToLowerInvariant() switch
            {
                "sigmoid" => DpoLossKind.Sigmoid,
                "ipo" => DpoLossKind.Ipo,
                var other => throw new QuantPeftException($"--dpo-loss: expected sigmoid or ipo; found '{other}'"),
            },
            OrpoLambda = parse.GetValue(_orpoLambda) ?? defaults.OrpoLambda,
            CacheReference = Knob.ParseSwitch(parse.GetValue(_referenceCache)!, "--reference-cache"),
        };
        options.Validate();
        return options;
    }
}
