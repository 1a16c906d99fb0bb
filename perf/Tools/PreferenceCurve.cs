using System.Globalization;
using QuantPeft.Trainers.Data;
using QuantPeft.Trainers.Data.Demo;
using QuantPeft.Trainers.Recipes;
using QuantPeft.Trainers.Training;
using QuantPeft.Formats.HuggingFace;
using QuantPeft.Trainers.Model;
using QuantPeft.Trainers.Tokenizers;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantPeft.Perf.Tools;

/// <summary>
/// DPO on the built-in demo model and the demo preference task (<see cref="UpperCasePreferenceTask"/>: chosen = the
/// word in capitals, rejected = lower case or shuffled capitals), with held-out reward accuracy measured every few
/// steps; writes the metrics, a table and the accuracy chart.
/// <c>perf preference-curve MODEL OUT_PREFIX [STEPS=150] [EVAL_EVERY=15] [TRAIN=2000] [EVAL=200] [TASK=mixed]</c>; MODEL
/// <c>tiny</c> is a seeded 2-layer byte-level model (hidden 32) written on the spot; TASK <c>case</c> keeps only the
/// lower-case rejections (the rule is then the letters' case alone).
/// </summary>
internal static class PreferenceCurve
{
    public static int Run(string[] args)
    {
        if (args.Length is < 3 or > 8)
        {
            Console.Error.WriteLine("usage: preference-curve DEMO_MODEL OUT_PREFIX [STEPS=150] [EVAL_EVERY=15] [TRAIN=2000] [EVAL=200] [TASK=mixed|case]");
            return 1;
        }
        int Arg(int i, int d) => args.Length > i ? int.Parse(args[i], CultureInfo.InvariantCulture) : d;
        string model = args[1], prefix = args[2];
        int steps = Arg(3, 150), every = Arg(4, 15), trainCount = Arg(5, 2000), evalCount = Arg(6, 200);
        bool caseOnly = args.Length > 7 && args[7] == "case";
        string work = Path.Combine(Path.GetTempPath(), "qpeft-preference-curve-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(work);
        bool tiny = model == "tiny";
        if (tiny) model = TinyModel(Path.Combine(work, "model"));
        var (train, eval) = UpperCasePreferenceTask.Generate(1234, trainCount, evalCount);
        if (caseOnly)
        {
            static PreferenceRecord Lower(PreferenceRecord r) => r with { Rejected = r.Chosen.ToLowerInvariant() };
            (train, eval) = ([.. train.Select(Lower)], [.. eval.Select(Lower)]);
        }
        string trainPath = Path.Combine(work, "train.jsonl"), evalPath = Path.Combine(work, "eval.jsonl");
        PreferenceDatasetWriter.Write(trainPath, train);
        PreferenceDatasetWriter.Write(evalPath, eval);
        var options = new FinetuneOptions
        {
            ModelFolder = model, DataPath = trainPath, EvalPath = evalPath, Steps = steps, EvalEvery = every, ExactMatchRecords = 0,
            MicroBatchSize = 8, SequenceLength = 32, LearningRate = tiny ? 2e-2 : 3e-3, Seed = 1234, Rank = tiny ? 4 : 8,
            Preference = new PreferenceOptions { Task = TrainingTask.Dpo, Beta = tiny ? 0.5 : 0.1 },
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
        RewardAccuracyPlot.Write(prefix + ".png", read, Title(tiny, evalCount));
        Console.WriteLine("| step | eval DPO loss | rewards chosen | rewards rejected | margin | held-out accuracy |");
        Console.WriteLine("|---|---|---|---|---|---|");
        foreach (var e in read.Eval)
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {e.Step} | {e.EvalLoss:F4} | {e.Preference!.RewardsChosen:F3} | {e.Preference.RewardsRejected:F3} | {e.Preference.Margin:F3} | {e.Preference.Accuracy:P1} |"));
        Directory.Delete(work, recursive: true);
        return 0;
    }

    private static string Title(bool tiny, int evalCount) =>
        $"DPO on {(tiny ? "a tiny 2-layer model" : "the demo model")}: reward accuracy on {evalCount} held-out pairs";

    /// <summary><c>perf preference-chart METRICS PNG tiny|demo EVAL_PAIRS</c>: redraws the chart of a finished run.</summary>
    public static int Chart(string[] args)
    {
        RewardAccuracyPlot.Write(args[2], MetricsLog.Read(args[1]), Title(args[3] == "tiny", int.Parse(args[4], CultureInfo.InvariantCulture)));
        return 0;
    }

    // 2 layers, hidden 32, byte-level, N(0, 0.05) projections and a N(0, 0.5) tied embedding (seed 11).
    private static string TinyModel(string folder)
    {
        var spec = new ModelSpec
        {
            ModelType = "llama", NumLayers = 2, HiddenSize = 32, IntermediateSize = 64, NumHeads = 2, NumKvHeads = 2,
            VocabSize = ByteLevelTokenizer.Size, TieWordEmbeddings = true, MaxPositionEmbeddings = 64,
        };
        manual_seed(11);
        using var m = new CausalLm(spec);
        using (no_grad())
            foreach (var (name, p) in m.named_parameters())
                if (p.dim() == 2) nn.init.normal_(p, 0, name.Contains("embed") ? 0.5 : 0.05);
        ModelFolder.SaveByteLevel(m, folder);
        return folder;
    }
}
