using QuantPeft.Memory.Planning;
using QuantPeft.Trainers.Recipes;

namespace QuantPeft.Trainers.Tests.Recipes;

public class OptimizerFingerprintTests
{
    [Fact]
    public void TheOptimizerIsRecordedByItsCommandLineName()
    {
        // Checkpoints written while the option was the string "adamw-8bit" record that string; they must still resume.
        using var dir = new TempDir();
        Directory.CreateDirectory(dir.File("model"));
        dir.Write("model/config.json", "{}");
        var options = new FinetuneOptions
        {
            ModelFolder = dir.File("model"), DataPath = dir.Write("train.jsonl", "{}\n"), Optimizer = OptimizerKind.AdamW8bit,
        };

        var recorded = TrainingFingerprint.Of(options);
        Assert.Equal("adamw-8bit", recorded["Optimizer"]);

        var paged = TrainingFingerprint.Of(options with { Optimizer = OptimizerKind.PagedAdamW8bit });
        Assert.Equal("--optimizer (Optimizer) differs: the checkpoint was written with adamw-8bit, this run has paged-adamw-8bit",
            TrainingFingerprint.FirstDifference(recorded, paged));
    }
}
