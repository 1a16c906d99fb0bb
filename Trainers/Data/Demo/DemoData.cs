namespace QuantPeft.Trainers.Data.Demo;

/// <summary>Paths of the demo data files written by <see cref="DemoData.Write"/>.</summary>
/// <param name="Pretrain"><c>pretrain.jsonl</c>: <c>{"text"}</c> records.</param>
/// <param name="FinetuneTrain"><c>finetune-train.jsonl</c>: <c>{"prompt", "completion"}</c> records.</param>
/// <param name="FinetuneEval"><c>finetune-eval.jsonl</c>: the fixed eval set of the fine-tuning task.</param>
public sealed record DemoDataFiles(string Pretrain, string FinetuneTrain, string FinetuneEval);

/// <summary>Writes the demo pre-training corpus and fine-tuning task as JSONL, deterministically from a seed.</summary>
public static class DemoData
{
    /// <summary>Default corpus size: about 2 MB of text.</summary>
    public const long DefaultPretrainBytes = 2_000_000;

    /// <summary>Default number of fine-tuning training records.</summary>
    public const int DefaultFinetuneTrain = 2000;

    /// <summary>Default number of fine-tuning eval records.</summary>
    public const int DefaultFinetuneEval = 200;

    /// <summary>Writes the three files into <paramref name="folder"/> (each atomically).</summary>
    public static DemoDataFiles Write(string folder, long seed, long pretrainBytes = DefaultPretrainBytes,
        int finetuneTrain = DefaultFinetuneTrain, int finetuneEval = DefaultFinetuneEval)
    {
        var files = new DemoDataFiles(Path.Combine(folder, "pretrain.jsonl"), Path.Combine(folder, "finetune-train.jsonl"),
            Path.Combine(folder, "finetune-eval.jsonl"));
        JsonlDatasetWriter.Write(files.Pretrain, DemoPretrainCorpus.Generate(seed, pretrainBytes));
        (var train, var eval) = UpperCaseTask.Generate(seed, finetuneTrain, finetuneEval);
        JsonlDatasetWriter.Write(files.FinetuneTrain, train);
        JsonlDatasetWriter.Write(files.FinetuneEval, eval);
        return files;
    }
}
