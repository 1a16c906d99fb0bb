using QuantPeft.Trainers.Data;
using QuantPeft.Trainers.Data.Demo;
using QuantPeft.Trainers.Recipes;
using QuantPeft.Trainers.Training;
using Spectre.Console;

namespace QuantPeft.Cli.Commands;

/// <summary>What <c>qpeft train --task dpo|orpo</c> prints and adds to <c>report.md</c>, and its demo pairs.</summary>
internal static class PreferenceReport
{
    /// <summary>Writes the demo preference pairs (<see cref="UpperCasePreferenceTask"/>) into the run folder and points the options at them.</summary>
    public static FinetuneOptions WriteDemoTask(FinetuneOptions options, string runFolder)
    {
        string folder = Path.Combine(runFolder, "data");
        var (train, eval) = UpperCasePreferenceTask.Generate(options.Seed, DemoData.DefaultFinetuneTrain, DemoData.DefaultFinetuneEval);
        string trainPath = Path.Combine(folder, "preference-train.jsonl"), evalPath = Path.Combine(folder, "preference-eval.jsonl");
        PreferenceDatasetWriter.Write(trainPath, train);
        PreferenceDatasetWriter.Write(evalPath, eval);
        return options with { DataPath = trainPath, EvalPath = options.EvalPath ?? evalPath };
    }

    /// <summary>The data line of the console output.</summary>
    public static void PrintData(IAnsiConsole console, FinetuneOptions options, PreferenceObjective objective) =>
        console.MarkupLine($"[bold]data[/] {objective.Data.TrainPairs.Count} train pairs, {objective.Data.EvalPairs.Count} eval pairs of 2 x {options.SequenceLength} tokens; "
            + $"{Task(options.Preference!)}, reference: {Reference(objective)}");

    /// <summary>One evaluation as a console line.</summary>
    public static string Describe(double loss, PreferenceMetrics p) =>
        $"loss {loss:F4}  rewards chosen {p.RewardsChosen:F4} rejected {p.RewardsRejected:F4} margin {p.Margin:F4}  accuracy {p.Accuracy:P1}";

    /// <summary>Appends the preference section (settings and the before/after rewards table) to <c>report.md</c>.</summary>
    public static void Append(string runFolder, FinetuneOptions options, FinetuneRecipe recipe, EvalResult before, EvalResult after)
    {
        string Row(string name, EvalResult e) => e.Preference is { } p
            ? $"| {name} | {e.Loss:F4} | {p.RewardsChosen:F4} | {p.RewardsRejected:F4} | {p.Margin:F4} | {p.Accuracy:P1} |"
            : $"| {name} | {e.Loss:F4} | | | | |";
        var lines = new[]
        {
            "", "## Preference tuning", "",
            $"- task: {Task(options.Preference!)}; reference: {Reference(recipe.Preference!)}",
            $"- pairs: {recipe.Preference!.Data.TrainPairs.Count} train, {recipe.Preference.Data.EvalPairs.Count} eval; chosen and rejected in one batch of 2 x {options.MicroBatchSize} rows",
            "- rewards: DPO β·(log π − log π_ref) summed over the answer's tokens; ORPO λ·(mean log π per answer token); accuracy: share of pairs with chosen reward > rejected",
            "",
            "| eval | loss | rewards chosen | rewards rejected | margin | accuracy |", "|---|---|---|---|---|---|",
            Row(recipe.ResumedFrom is null ? "before" : $"at resume (step {recipe.StartStep})", before), Row("after", after), "",
        };
        File.AppendAllText(Path.Combine(runFolder, "report.md"), string.Join('\n', lines));
        if (RewardAccuracyPlot.Write(Path.Combine(runFolder, "rewards.png"), MetricsLog.Read(Path.Combine(runFolder, "metrics.jsonl"))))
            File.AppendAllText(Path.Combine(runFolder, "report.md"), "\n![reward accuracy](rewards.png)\n");
    }

    private static string Task(PreferenceOptions p) => p.Task == TrainingTask.Dpo
        ? $"DPO ({p.Loss.ToString().ToLowerInvariant()}, beta {p.Beta}, label smoothing {p.LabelSmoothing})"
        : $"ORPO (lambda {p.OrpoLambda})";

    private static string Reference(PreferenceObjective o) => o.Reference switch
    {
        ReferenceSource.AdaptersOff => "the model with its adapters off (no autograd)",
        ReferenceSource.Cache => $"cached before step 1 ({o.CachedRows} rows)",
        _ => "none",
    };
}
