using System.Text.RegularExpressions;
using QuantPeft.Trainers.Data;
using QuantPeft.Trainers.Data.Demo;
using QuantPeft.Trainers.Tokenizers;

namespace QuantPeft.Trainers.Tests.Data;

public partial class DemoDataTests
{
    [GeneratedRegex("[A-Z]{2,}")]
    private static partial Regex CapitalRun();

    [Fact]
    public void FilesAreByteIdenticalForASeedAndDifferForAnother()
    {
        using var dir = new TempDir();
        var a = DemoData.Write(Path.Combine(dir.Path, "a"), seed: 11, pretrainBytes: 60_000, finetuneTrain: 300, finetuneEval: 50);
        var b = DemoData.Write(Path.Combine(dir.Path, "b"), seed: 11, pretrainBytes: 60_000, finetuneTrain: 300, finetuneEval: 50);
        var c = DemoData.Write(Path.Combine(dir.Path, "c"), seed: 12, pretrainBytes: 60_000, finetuneTrain: 300, finetuneEval: 50);
        foreach (var (x, y, z) in new[] { (a.Pretrain, b.Pretrain, c.Pretrain), (a.FinetuneTrain, b.FinetuneTrain, c.FinetuneTrain), (a.FinetuneEval, b.FinetuneEval, c.FinetuneEval) })
        {
            Assert.Equal(File.ReadAllBytes(x), File.ReadAllBytes(y));
            Assert.NotEqual(File.ReadAllBytes(x), File.ReadAllBytes(z));
        }
        Assert.Equal(300, JsonlDatasetReader.Read(a.FinetuneTrain).Count);
        Assert.Equal(50, JsonlDatasetReader.Read(a.FinetuneEval).Count);
    }

    [Fact]
    public void CorpusReachesItsTargetSizeWithShortDocuments()
    {
        var docs = DemoPretrainCorpus.Generate(3, 100_000).Select(r => r.Text!).ToList();
        long bytes = docs.Sum(d => (long)System.Text.Encoding.UTF8.GetByteCount(d));
        Assert.InRange(bytes, 100_000, 100_000 + 2_000);
        Assert.All(docs, d => Assert.InRange(d.Length, 20, 1_500));
    }

    [Fact]
    public void TasksDoNotOverlap()
    {
        string corpus = string.Join("\n", DemoPretrainCorpus.Generate(5, 300_000).Select(r => r.Text));
        Assert.DoesNotContain("=>", corpus);
        Assert.DoesNotContain("upper", corpus);
        Assert.False(CapitalRun().IsMatch(corpus), "the corpus must contain no all-capital word");

        (var train, var eval) = UpperCaseTask.Generate(5, 2000, 200);
        var trainWords = train.Select(r => r.Completion).ToHashSet();
        Assert.Equal(2000, trainWords.Count);
        Assert.DoesNotContain(eval, r => trainWords.Contains(r.Completion));
        Assert.DoesNotContain(train.Concat(eval), r => corpus.Contains(r.Prompt!.Trim(), StringComparison.Ordinal));
    }

    [Fact]
    public void EveryCompletionIsThePromptWordInCapitals()
    {
        (var train, var eval) = UpperCaseTask.Generate(9, 500, 100);
        foreach (var r in train.Concat(eval))
        {
            Match m = Regex.Match(r.Prompt!, "^upper: ([a-z]{3,6}) => $");
            Assert.True(m.Success, r.Prompt);
            Assert.Equal(m.Groups[1].Value.ToUpperInvariant(), r.Completion);
        }
    }

    [Fact]
    public void ExactMatchCountsOnlyIdenticalAnswers()
    {
        (_, var eval) = UpperCaseTask.Generate(1, 0, 4);
        var answers = new Dictionary<string, string>
        {
            [eval[0].Prompt!] = eval[0].Completion!,
            [eval[1].Prompt!] = eval[1].Completion! + " ",
            [eval[2].Prompt!] = eval[2].Completion!.ToLowerInvariant(),
            [eval[3].Prompt!] = eval[3].Completion!,
        };
        Assert.Equal(0.5, UpperCaseTask.ExactMatchAccuracy(eval, p => answers[p]));
    }

    [Fact]
    public void DemoFilesLoadAsDatasetsWithTheFixedEvalSet()
    {
        using var dir = new TempDir();
        var files = DemoData.Write(dir.Path, seed: 2, pretrainBytes: 20_000, finetuneTrain: 100, finetuneEval: 20);
        var tok = ByteLevelTokenizer.Instance;
        var ft = TrainingDataset.Load(files.FinetuneTrain, tok, new DatasetOptions { SequenceLength = 32, Layout = RowLayout.Padded }, 256, evalPath: files.FinetuneEval);
        Assert.Equal((100, 20, 100, 20), (ft.Stats.TrainRecords, ft.Stats.EvalRecords, ft.Stats.TrainRows, ft.Stats.EvalRows));
        // Only the capitals and EOS are targets: 3-6 letters + EOS per row.
        Assert.All(ft.TrainRows, r => Assert.InRange(r.TargetCount, 4, 7));
        var pt = TrainingDataset.Load(files.Pretrain, tok, new DatasetOptions { SequenceLength = 128, EvalFraction = 0.05 }, 256);
        Assert.True(pt.Stats.TrainRows > 100);
        Assert.Throws<DatasetOptionsException>(() => TrainingDataset.Load(files.FinetuneTrain, tok,
            new DatasetOptions { SequenceLength = 32, EvalFraction = 0.1 }, 256, evalPath: files.FinetuneEval));
    }
}
