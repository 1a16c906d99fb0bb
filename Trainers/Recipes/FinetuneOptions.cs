using QuantPeft.Trainers.Adapters;

namespace QuantPeft.Trainers.Recipes;

/// <summary>Every choice of one fine-tuning run, flat, as the CLI and the plan record them.</summary>
public sealed record FinetuneOptions
{
    /// <summary>The model folder (config.json, model.safetensors, tokenizer).</summary>
    public required string ModelFolder { get; init; }

    /// <summary>Training JSONL.</summary>
    public required string DataPath { get; init; }

    /// <summary>A separate eval JSONL, or null to hold out <see cref="EvalFraction"/> of the training file.</summary>
    public string? EvalPath { get; init; }

    /// <summary>Share of the training file held out when there is no eval file.</summary>
    public double EvalFraction { get; init; } = 0.1;

    /// <summary>LoRA or DoRA.</summary>
    public AdapterMethod Method { get; init; } = AdapterMethod.Lora;

    /// <summary>Storage of the frozen projections.</summary>
    public BaseWeightFormat Weights { get; init; } = BaseWeightFormat.Nf4;

    /// <summary>Double quantization of the 4-bit scales.</summary>
    public bool DoubleQuant { get; init; } = true;

    /// <summary>Adapter rank.</summary>
    public int Rank { get; init; } = 8;

    /// <summary>Adapter α (scaling α/r).</summary>
    public double Alpha { get; init; } = 16;

    /// <summary>Projections that get adapters (see <see cref="ModelAdapters.ResolveTargets"/>).</summary>
    public IReadOnlyList<string> Targets { get; init; } = ["all-linear"];

    /// <summary>Optimizer name (see <see cref="QuantPeft.Optimizers.OptimizerFactory.Names"/>).</summary>
    public string Optimizer { get; init; } = "adamw";

    /// <summary>Peak learning rate.</summary>
    public double LearningRate { get; init; } = 3e-3;

    /// <summary>Decoupled weight decay.</summary>
    public double WeightDecay { get; init; }

    /// <summary>Share of the steps spent in linear warm-up.</summary>
    public double WarmupRatio { get; init; } = 0.05;

    /// <summary>Global gradient-norm clip.</summary>
    public double MaxGradNorm { get; init; } = 1.0;

    /// <summary>Rows per micro-batch.</summary>
    public int MicroBatchSize { get; init; } = 16;

    /// <summary>Tokens per row.</summary>
    public int SequenceLength { get; init; } = 32;

    /// <summary>Micro-batches per optimizer step.</summary>
    public int GradientAccumulation { get; init; } = 1;

    /// <summary>Optimizer steps.</summary>
    public int Steps { get; init; } = 1200;

    /// <summary>Evaluate the loss every this many steps (0: only before and after).</summary>
    public int EvalEvery { get; init; } = 50;

    /// <summary>Eval records scored by exact match (greedy decoding); 0 turns the metric off.</summary>
    public int ExactMatchRecords { get; init; } = 200;

    /// <summary>Seeds adapter init, data order and split.</summary>
    public long Seed { get; init; } = 42;

    /// <summary>Checks ranges; each message names the CLI flag.</summary>
    /// <exception cref="RecipeException">A value is out of range.</exception>
    public void Validate()
    {
        Positive(Steps, "--steps");
        Positive(Rank, "--rank");
        Positive(MicroBatchSize, "--batch");
        Positive(SequenceLength, "--seq");
        Positive(GradientAccumulation, "--grad-accum");
        if (!(LearningRate > 0) || double.IsInfinity(LearningRate)) throw new RecipeException($"--lr: expected a positive number, found {LearningRate}");
        if (!(Alpha > 0)) throw new RecipeException($"--alpha: expected a positive number, found {Alpha}");
    }

    private static void Positive(int value, string flag)
    {
        if (value < 1) throw new RecipeException($"{flag}: expected a positive integer, found {value}");
    }
}
