using System.Globalization;
using QuantPeft.Trainers.Data;
using QuantPeft.Trainers.Data.Demo;
using QuantPeft.Trainers.Recipes;
using QuantPeft.Trainers.Training;

namespace QuantPeft.Perf.Tools;

/// <summary>
/// DPO on the built-in demo model and the demo preference task (<see cref="UpperCasePreferenceTask"/>: chosen = the
/// word in capitals, rejected = lower case or shuffled capitals), with held-out reward accuracy measured every few
/// steps; writes the metrics, a table and the accuracy chart.
/// <c>perf preference-curve DEMO_MODEL OUT_PREFIX [STEPS=150] [EVAL_EVERY=15] [TRAIN=2000] [EVAL=200]</c>.
/// </summary>
internal static class PreferenceCurve
{
    public static int Run(string[] args)
    {
        if (args.Length is < 3 or > 7)
        {
            Console.Error.WriteLine("usage: preference-curve DEMO_MODEL OUT_PREFIX [STEPS=150] [EVAL_EVERY=15] [TRAIN=2000] [EVAL=200]");
            return 1;
        }
        int Arg(int i, int d) => args.Length > i ? int.Parse(args[i], CultureInfo.InvariantCulture) : d;
        string model = args[1], prefix = args[2];
        int steps = Arg(3, 150), every = Arg(4, 15), trainCount = Arg(5, 2000), evalCount = Arg(6, 200);
        string work = Path.Combine(Path.GetTempPath(), "qpeft-preference-curve-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(work);
        var (train, eval) = UpperCasePreferenceTask.Generate(1234, trainCount, evalCount);
        string trainPath = Path.Combine(work, "train.jsonl"), evalPath = Path.Combine(work, "eval.jsonl");
        PreferenceDatasetWriter.Write(trainPath, train);
        PreferenceDatasetWriter.Write(evalPath, eval);
        var options = new FinetuneOptions
        {
            ModelFolder = model, DataPath = trainPath, EvalPath = evalPath, Steps = steps, EvalEvery = every, ExactMatchRecords = 0,
            MicroBatchSize = 8, SequenceLength = 32, LearningRate = 3e-3, Seed = 1234,
            Preference = new PreferenceOptions { Task = TrainingTask.Dpo, Beta = 0.1 },
        };
        string metrics = prefix + ".metrics.jsonl";
        using (var recipe = new FinetuneRecipe(options))
        {
            recipe.Setup();
            var before = recipe.Evaluate();
            using (var log = new MetricsWriter(metrics))
            {
                log.Write(new EvalMetrics(0, before.Loss) { Preference = before.Preference });
                recipe.Train(log, r => { if (r.Step % 5 == 0) Console.WriteLine($"step {r.Step} loss {r.Loss:F4}"); });
                var after = recipe.Evaluate();
                log.Write(new EvalMetrics(steps, after.Loss) { Preference = after.Preference });
            }
        }
        var read = MetricsLog.Read(metrics);
        RewardAccuracyPlot.Write(prefix + ".png", read, $"DPO on the demo model: reward accuracy on {evalCount} held-out pairs");
        Console.WriteLine("| step | eval DPO loss | rewards chosen | rewards rejected | margin | held-out accuracy |");
        Console.WriteLine("|---|---|---|---|---|---|");
        foreach (var e in read.Eval)
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {e.Step} | {e.EvalLoss:F4} | {e.Preference!.RewardsChosen:F3} | {e.Preference.RewardsRejected:F3} | {e.Preference.Margin:F3} | {e.Preference.Accuracy:P1} |"));
        Directory.Delete(work, recursive: true);
        return 0;
    }
}
