using QuantPeft.Memory.Planning;
using QuantPeft.Trainers.Adapters;
using QuantPeft.Trainers.Model;
using QuantPeft.Memory.Planning.Methods;
using QuantPeft.Trainers.Adapters.Methods;

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

    /// <summary>
    /// On the CPU, bound the freed memory the C heap keeps between decoder blocks (see <c>HeapRetentionGuard</c>), so the
    /// measured peak stays inside the planned fragmentation share. The commands that train one run per process turn it
    /// on; it trims process-wide, so code that trains several models at once in one process leaves it off.
    /// </summary>
    public bool HeapGuard { get; init; }

    /// <summary>The chat template by name (<c>default</c>, <c>chatml</c>, <c>llama3</c>) or <c>.jinja</c> path; null: the model folder's own.</summary>
    public string? ChatTemplate { get; init; }

    /// <summary>What to do with an example longer than a row (<c>--truncation</c>).</summary>
    public Data.TruncationPolicy Truncation { get; init; } = Data.TruncationPolicy.Error;

    /// <summary>
    /// Pack several examples into each row, kept apart (position ids restart, attention stays within an example): true
    /// (<c>--packing on</c>), false (one example per row), or null to decide by the data (on for plain text, off otherwise).
    /// </summary>
    public bool? Packing { get; init; }

    /// <summary>Field names mapped as <c>FIELD=COLUMN</c> (<c>--field</c>), for files whose columns are named differently.</summary>
    public IReadOnlyList<string> Fields { get; init; } = [];

    /// <summary>Share of the training file held out when there is no eval file.</summary>
    public double EvalFraction { get; init; } = 0.1;

    /// <summary>What is trained: the planner's method (an adapter kind, full-parameter, LISA, GaLore, LoRAM).</summary>
    public TrainingMethod Method { get; init; } = TrainingMethod.Lora;

    /// <summary>Storage of the base projections (the planner's <c>--weights</c>).</summary>
    public WeightFormat Weights { get; init; } = WeightFormat.Nf4;

    /// <summary>Average bits per quantized parameter when <see cref="Weights"/> is LQ-LoRA; 0 otherwise.</summary>
    public double LqLoraBits { get; init; }

    /// <summary>Double quantization of the 4-bit scales.</summary>
    public bool DoubleQuant { get; init; } = true;

    /// <summary>Adapter rank.</summary>
    public int Rank { get; init; } = 8;

    /// <summary>Adapter α (scaling α/r).</summary>
    public double Alpha { get; init; } = 16;

    /// <summary>Projections that get adapters (see <see cref="ModelAdapters.ResolveTargets"/>).</summary>
    public IReadOnlyList<string> Targets { get; init; } = ["all-linear"];

    /// <summary>The optimizer (spelled on the command line by <see cref="Knob.Name(OptimizerKind)"/>).</summary>
    public OptimizerKind Optimizer { get; init; } = OptimizerKind.AdamW;

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

    /// <summary>Recompute each decoder block in backward instead of keeping its activations.</summary>
    public bool Checkpointing { get; init; }

    /// <summary>Attention kernel (fused never materialises the s×s scores).</summary>
    public AttentionImplementation Attention { get; init; } = AttentionImplementation.Fused;

    /// <summary>Optimizer-in-backward: each parameter is stepped as soon as its gradient is ready.</summary>
    public bool Layerwise { get; init; }

    /// <summary>LISA: decoder layers trained at a time (γ); 0 outside LISA.</summary>
    public int LisaLayers { get; init; }

    /// <summary>LISA: optimizer steps between two samplings of the active layers (K).</summary>
    public int LisaInterval { get; init; } = 20;

    /// <summary>LoRAM: structured pruning ratio in (0, 1); 0 outside LoRAM.</summary>
    public double Prune { get; init; }

    /// <summary>LoRAM: which channels and heads are pruned (<c>random</c> or <c>magnitude</c>).</summary>
    public string PruneCriterion { get; init; } = "random";

    /// <summary>Write a resumable checkpoint every this many optimizer steps (0: none).</summary>
    public int SaveEvery { get; init; }

    /// <summary>
    /// The run folder periodic checkpoints (<see cref="SaveEvery"/>) are written into; null for a run that writes none.
    /// Where to write, so it is no part of the training fingerprint.
    /// </summary>
    public string? RunFolder { get; init; }

    /// <summary>A checkpoint folder to resume from, or null to start fresh.</summary>
    public string? ResumeFrom { get; init; }

    /// <summary>DPO or ORPO settings (<c>--task dpo|orpo</c>); null for supervised fine-tuning.</summary>
    public PreferenceOptions? Preference { get; init; }
    /// <summary>
    /// The libtorch device the whole run lives on (<c>cpu</c>, <c>cuda:N</c>; see <see cref="RunDevice.Resolve"/>):
    /// model, 4-bit bases, adapters, optimizer states, loss and evaluation. Weights still stream from host memory.
    /// </summary>
    public string Device { get; init; } = "cpu";

    /// <summary>
    /// The one check of a run's options: ranges, the strategies the trainer can run, the knobs that contradict each
    /// other (<see cref="Strategies.StrategyChecks"/>) and the target names; each message names the CLI flag. Layer
    /// counts and what a pre-quantized folder decides are checked later, against the model.
    /// </summary>
    /// <exception cref="RecipeException">A value is out of range, not available, or contradicts another.</exception>
    /// <exception cref="AdapterException">A target name is unknown.</exception>
    public void Validate()
    {
        Positive(Steps, "--steps");
        Positive(Rank, "--rank");
        Positive(MicroBatchSize, "--batch");
        Positive(SequenceLength, "--seq");
        Positive(GradientAccumulation, "--grad-accum");
        if (!(LearningRate > 0) || double.IsInfinity(LearningRate)) throw new RecipeException($"--lr: expected a positive number, found {LearningRate}");
        if (!(Alpha > 0)) throw new RecipeException($"--alpha: expected a positive number, found {Alpha}");
        Positive(LisaInterval, "--lisa-interval");
        if (LisaLayers < 0) throw new RecipeException($"--lisa-layers: expected a positive integer, found {LisaLayers}");
        if (Prune != 0 && !(Prune > 0 && Prune < 1)) throw new RecipeException($"--prune: expected a ratio in (0, 1), found {Prune}");
        if (!QuantPeft.Trainers.Pruning.PruningCriteria.Names.Contains(PruneCriterion))
            throw new RecipeException($"--prune-criterion: expected one of {string.Join(", ", QuantPeft.Trainers.Pruning.PruningCriteria.Names)}; found '{PruneCriterion}'");
        if (SaveEvery < 0) throw new RecipeException($"--save-every: expected 0 or a positive integer, found {SaveEvery}");
        if (SaveEvery > 0 && RunFolder is null) throw new RecipeException($"--save-every {SaveEvery}: checkpoints go into the run folder, and none is set ({nameof(RunFolder)})");
        Preference?.Validate();
        if (Packing is not null && Preference is not null)
            throw new RecipeException($"--packing: preference runs (--task {Preference.Task.ToString().ToLowerInvariant()}) put each pair's answers in rows of their own; leave --packing out");
        EnsureRunnable();
        ModelAdapters.ResolveTargets(Targets);
    }

    // Refuses, with the flag's name, every strategy the trainer cannot run yet, so that asking for one is an error and
    // never silently ignored. Each strategy removes its line here when it lands.
    private void EnsureRunnable()
    {
        if (MethodRegistry.Of(Method).IsAdapter && !AdapterRegistry.Has(Method))
            NotYet($"--method {Knob.Name(Method)}");
        if (Method == TrainingMethod.Loram && Prune == 0)
            throw new RecipeException("--prune: --method loram needs a pruning ratio in (0, 1), e.g. --prune 0.5");
        if (Weights is not (WeightFormat.Nf4 or WeightFormat.Fp4 or WeightFormat.Bf16 or WeightFormat.LqLora))
            NotYet($"--weights {Knob.Name(Weights, LqLoraBits)}");
        if (Weights == WeightFormat.LqLora && Method != TrainingMethod.Lora)
            throw new RecipeException($"--weights {Knob.Name(Weights, LqLoraBits)}: the LQ-LoRA base starts a LoRA at L1·L2; use --method lora, not {Knob.Name(Method)}");
        if (LisaLayers != 0 && Method != TrainingMethod.Lisa)
            throw new RecipeException($"--lisa-layers: only applies to --method lisa, not {Knob.Name(Method)}");
        if (Prune != 0 && Method != TrainingMethod.Loram)
            throw new RecipeException($"--prune: only applies to --method loram, not {Knob.Name(Method)}");
        Strategies.StrategyChecks.Check(this);
    }

    private static void NotYet(string what) => throw new RecipeException($"{what}: not available yet in qpeft train");

    private static void Positive(int value, string flag)
    {
        if (value < 1) throw new RecipeException($"{flag}: expected a positive integer, found {value}");
    }
}
