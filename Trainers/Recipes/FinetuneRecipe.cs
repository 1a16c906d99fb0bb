using System.Diagnostics;
using QuantPeft.Formats.HuggingFace;
using QuantPeft.Memory.Planning;
using QuantPeft.Optimizers;
using QuantPeft.Trainers.Adapters;
using QuantPeft.Trainers.Adapters.Methods;
using QuantPeft.Trainers.Data;
using QuantPeft.Trainers.Loss;
using QuantPeft.Trainers.Model;
using QuantPeft.Trainers.Pruning;
using QuantPeft.Trainers.Recipes.Components;
using QuantPeft.Trainers.Strategies;
using QuantPeft.Trainers.Tokenizers;
using QuantPeft.Trainers.Training;
using TorchSharp;
using Parameter = TorchSharp.Modules.Parameter;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Recipes;

/// <summary>
/// One fine-tuning run of any method (an adapter on a frozen, by default NF4 base; or the base weights themselves),
/// readable top to bottom: <see cref="Setup"/> loads data and model, makes the method's parameters trainable and
/// builds the optimizer; <see cref="Train"/> runs micro-batches with gradient accumulation, a warm-up + cosine
/// schedule, gradient clipping, periodic eval and checkpoints; <see cref="Evaluate"/> measures loss, perplexity and
/// exact match; <see cref="Save"/> writes the adapter (or the model); <see cref="Cleanup"/> frees everything.
/// </summary>
/// <remarks>
/// Strategies that change how a run loads, steps or frees memory (LISA, LoRAM, layer-wise updates, kept gradients,
/// heap trimming, VeRA's shared matrices) are <see cref="IRecipeComponent"/>s, chosen once from the options by
/// <see cref="RecipeComponents.Select"/>; the recipe calls their hooks at fixed points and owns the optimizer they may replace.
/// </remarks>
public sealed partial class FinetuneRecipe : IDisposable
{
    private FinetuneOptions _options;
    private readonly IReadOnlyList<IRecipeComponent> _components;
    private RecipeRun? _run;
    private CausalLm? _model;
    private IReadOnlyList<AttachedAdapter> _adapters = [];
    private PreferenceObjective? _preference;
    private Device? _device;

    /// <summary>Creates the recipe (options checked, components chosen); nothing is loaded until <see cref="Setup"/>.</summary>
    /// <param name="options">The run's options.</param>
    /// <param name="extra">Components installed after those the options select, for strategies outside this library.</param>
    /// <exception cref="RecipeException">An option is out of range or contradicts another.</exception>
    public FinetuneRecipe(FinetuneOptions options, IEnumerable<IRecipeComponent>? extra = null)
    {
        options.Validate();
        _options = options;
        _components = [.. RecipeComponents.Select(options, RunDevice.IsHost(Device)), .. extra ?? []];
    }

    /// <summary>The model architecture (after <see cref="Setup"/>).</summary>
    public ModelSpec? Spec { get; private set; }
    /// <summary>The model's tokenizer (after <see cref="Setup"/>).</summary>
    public ITextTokenizer? Tokenizer { get; private set; }
    /// <summary>The chat template <c>messages</c> records are rendered with (after <see cref="Setup"/>).</summary>
    public ChatTemplate? ChatTemplate { get; private set; }
    /// <summary>The prepared data (after <see cref="Setup"/>).</summary>
    public TrainingDataset? Data { get; private set; }
    /// <summary>The preference loss and its pairs (after <see cref="Setup"/> of a DPO or ORPO run); null for SFT.</summary>
    public PreferenceObjective? Preference => _preference;
    /// <summary>The model with its adapters (after <see cref="Setup"/>).</summary>
    public CausalLm Model => _model ?? throw new InvalidOperationException("call Setup first");
    /// <summary>The attached adapters in model order.</summary>
    public IReadOnlyList<AttachedAdapter> Adapters => _adapters;
    /// <summary>The components this run installed, in hook order.</summary>
    public IReadOnlyList<IRecipeComponent> Components => _components;
    /// <summary>Trainable scalars: the adapters', or for full-parameter methods every weight that can train (all of LISA's layers).</summary>
    public long TrainableParameters => FullParameterTraining.TrainsBaseWeights(_options.Method)
        ? (_run?.Trainable ?? []).Sum(p => p.Param.numel()) : ModelAdapters.TrainableCount(_adapters);
    /// <summary>The LISA schedule (active layers, trainable set) when the method is LISA, else null.</summary>
    public LisaSchedule? Lisa => Component<LisaLayerSampling>()?.Schedule;
    /// <summary>The optimizer (for LISA: the current period's).</summary>
    public IOptimizer CurrentOptimizer => _run?.Optimizer ?? throw new InvalidOperationException("call Setup first");
    /// <summary>Bytes of the frozen base projections as stored (4-bit codes + scales, or bf16).</summary>
    public long BaseProjectionBytes { get; private set; }
    /// <summary>LoRAM: the kept heads and channels of every block (after <see cref="Setup"/>); null for other methods.</summary>
    public PruningPlan? Pruning => Component<LoramStructuredPruning>()?.Pruner?.Plan;
    /// <summary>The device the whole run lives on (<see cref="FinetuneOptions.Device"/>).</summary>
    public Device Device => _device ??= torch.device(_options.Device);

    private RecipeRun Run => _run ?? throw new InvalidOperationException("call Setup first");
    private T? Component<T>() where T : class, IRecipeComponent => _components.OfType<T>().FirstOrDefault();

    /// <summary>Loads tokenizer, data and model (quantizing the base on load), makes the method's parameters trainable, builds the optimizer.</summary>
    /// <exception cref="RecipeException">The sequence length exceeds the model's limit, or the optimizer is unknown.</exception>
    public void Setup()
    {
        var spec = Spec = ModelFolder.ReadSpec(_options.ModelFolder);
        // Phi-3's fused projections carry one adapter each; every later reader of the targets sees the model's own names.
        var targets = ModelAdapters.ForModel(_options.Targets, spec);
        _options = _options with { Targets = targets };
        PrequantizedOptions.Check(_options);
        if (_options.SequenceLength > spec.MaxPositionEmbeddings)
            throw new RecipeException($"--seq: {_options.SequenceLength} exceeds the model's max_position_embeddings {spec.MaxPositionEmbeddings} ({Path.Combine(_options.ModelFolder, ModelConfigReader.FileName)})");
        var run = _run = new RecipeRun(_options, spec, targets, Device, t => RecipeOptimizer.Create(_options, Device, t));
        Tokenizer = ModelFolder.ReadTokenizer(_options.ModelFolder);
        ChatTemplate = QuantPeft.Trainers.Data.ChatTemplate.Resolve(_options.ChatTemplate, _options.ModelFolder);
        var pairs = _options.Preference is null ? null : PreferenceSetup.Load(_options, Tokenizer, ChatTemplate);
        if (pairs is null) Data = TrainingDataset.Load(_options.DataPath, Tokenizer, DataOptions(), spec.MaxPositionEmbeddings, ChatTemplate, evalPath: _options.EvalPath);

        var decoder = new DecoderOptions
        {
            ComputeDType = ScalarType.BFloat16, Device = Device, LinearFactory = BaseLoading.Factory(_options, run.Targets, Device),
            GradientCheckpointing = _options.Checkpointing, Attention = _options.Attention,
        };
        run.Data = Data;
        _model = run.Model = ModelFolder.Load(_options.ModelFolder, spec, _components.Aggregate(decoder, (d, c) => c.BeforeLoad(run, d)));
        foreach (var c in _components) c.AfterLoad(run);
        BaseProjectionBytes = _model.modules().OfType<QuantizedBaseLinear>().Sum(q => q.StorageBytes)
            + _model.modules().OfType<DenseLinear>().Sum(d => d.Weight.numel() * d.Weight.ElementSize)
            + _model.modules().OfType<LqLoraBaseLinear>().Sum(q => q.StorageBytes);

        run.Trainable = MakeTrainable(_model, run.Targets);
        if (pairs is not null)
        {
            // Before a resume loads trained tensors: a cached reference is the model the run starts from.
            _preference = new PreferenceObjective(_options.Preference!, pairs, _model, _adapters, PreferenceSetup.AdapterOffIsStart(_options));
            _preference.Prepare(_options.MicroBatchSize);
        }
        foreach (var c in _components) c.BeforeOptimizer(run);
        if (run.Optimizer is null) run.ReplaceOptimizer(run.CreateOptimizer(run.Trainable), run.Trainable);
        foreach (var c in _components) c.AfterSetup(run);
        if (_options.ResumeFrom is not null) Resume(_options.ResumeFrom);
        SampleMemory();
    }

    // One example per row, or several kept apart (--packing on); by default by the data's shape (docs/data.md).
    private DatasetOptions DataOptions() => new()
    {
        SequenceLength = _options.SequenceLength,
        Layout = _options.Packing switch { null => RowLayout.ByShape, true => RowLayout.Segmented, false => RowLayout.Padded },
        Truncation = _options.Truncation,
        Fields = DatasetFields.Parse(_options.Fields),
        EvalFraction = _options.EvalPath is null ? _options.EvalFraction : 0,
        Seed = _options.Seed,
    };

    // What trains. Adapter methods attach adapters and freeze everything else; full-parameter methods
    // (full, GaLore, Natural GaLore, LISA) train the dense base in place.
    private IReadOnlyList<(string Name, Parameter Param)> MakeTrainable(CausalLm model, IReadOnlyList<string> targets)
    {
        if (FullParameterTraining.TrainsBaseWeights(_options.Method))
            return FullParameterTraining.Prepare(model);
        _adapters = ModelAdapters.Attach(model, _options.Method, new LoraOptions(_options.Rank, _options.Alpha), targets, _options.Seed,
            Component<SharedAdapterBases>()?.State, Component<DataDrivenInitialisation>()?.Factors);
        return ModelAdapters.TrainableParameters(_adapters);
    }

    /// <summary>
    /// Runs <see cref="FinetuneOptions.Steps"/> optimizer steps; every step is written to <paramref name="log"/> and
    /// reported to <paramref name="onStep"/>; eval loss every <see cref="FinetuneOptions.EvalEvery"/> steps; a checkpoint
    /// every <see cref="FinetuneOptions.SaveEvery"/> steps into <see cref="FinetuneOptions.RunFolder"/>.
    /// </summary>
    public void Train(MetricsWriter log, Action<StepReport>? onStep = null)
    {
        var (model, run) = (Model, Run);
        int warmup = (int)Math.Round(_options.Steps * _options.WarmupRatio);
        var schedule = new WarmupCosineSchedule(_options.LearningRate, Math.Min(warmup, _options.Steps - 1), _options.Steps);
        using var batches = EndlessBatches().GetEnumerator();
        model.train();
        for (int step = _startStep; step < _options.Steps; step++)
        {
            var clock = Stopwatch.StartNew();
            foreach (var c in _components) c.BeforeStep(run, step);
            var optimizer = run.Optimizer!;
            foreach (var group in optimizer.Groups) group.Lr = schedule.At(step);

            // Gradient accumulation: each micro-batch's summed loss is divided by the target count of the whole
            // step, so the accumulated gradient is the mean over all its tokens, as one big batch would give.
            var micro = new List<MicroBatch>();
            for (int i = 0; i < _options.GradientAccumulation; i++)
            {
                batches.MoveNext();
                micro.Add(batches.Current);
            }
            double targets = _preference is not null ? micro.Sum(b => b.BatchSize / 2) : Math.Max(1, micro.Sum(b => b.TargetCount));
            var tally = _preference is null ? null : new PreferenceTally();
            double stepLoss = 0;
            long tokens = 0;
            foreach (var batch in micro)
            {
                using var scope = NewDisposeScope();
                var (ids, labels) = MicroBatchTensors.Of(batch, model.LmHeadWeight.device);
                using var segments = MicroBatchTensors.Segments(batch, model.LmHeadWeight.device);
                Tensor loss;
                if (_preference is not null) loss = _preference.Loss(batch, targets, tally!);
                else
                {
                    var hidden = model.Hidden(ids, segments);
                    foreach (var c in _components) c.AfterForward(run);
                    loss = ChunkedCrossEntropy.Compute(hidden, model.LmHeadWeight, labels, divisor: targets,
                        finalLogitSoftcap: model.Spec.FinalLogitSoftcap);
                }
                loss.backward();
                stepLoss += loss.item<float>();
                tokens += batch.TokenCount;
            }
            double? norm = run.ClipsGradients ? nn.utils.clip_grad_norm_(run.Optimized.Select(p => p.Param), _options.MaxGradNorm) : null;
            foreach (var c in _components) c.BeforeUpdate(run);
            optimizer.Step();
            optimizer.ZeroGrad(setToNone: !run.KeepsGradients);
            MaybeSaveCheckpoint(step);

            long rss = SampleMemory();
            var report = new StepReport(step + 1, stepLoss, schedule.At(step), tokens / clock.Elapsed.TotalSeconds, rss);
            log.Write(new TrainMetrics(report.Step, report.Loss, report.LearningRate, report.TokensPerSecond, PeakBytes) { GradNorm = norm, PeakSource = PeakSource, Preference = tally?.Metrics() });
            onStep?.Invoke(report);
            if (_options.EvalEvery > 0 && report.Step % _options.EvalEvery == 0 && report.Step < _options.Steps)
            {
                var eval = Evaluate(exactMatch: false);
                log.Write(new EvalMetrics(report.Step, eval.Loss) { Preference = eval.Preference });
                model.train();
            }
        }
        model.eval();
    }

    /// <summary>Frees the optimizer state, the model and what the components hold.</summary>
    public void Cleanup()
    {
        _run?.ReleaseOptimizer();
        _model?.Dispose();
        _model = null;
        foreach (var t in _adapters.SelectMany(a => a.Initial?.Values ?? [])) t.Dispose();
        _adapters = [];
        if (_run is not null)
            foreach (var c in _components) c.OnDispose(_run);
    }

    /// <inheritdoc />
    public void Dispose() => Cleanup();

    // From the resume position on (epoch 0, batch 0 for a fresh run): the first epoch is entered at the micro-batch a checkpoint stopped before.
    private IEnumerable<MicroBatch> EndlessBatches()
    {
        for (int epoch = _startEpoch; ; epoch++)
            foreach (var batch in (_preference?.Data.TrainBatches(_options.MicroBatchSize, epoch) ?? Data!.TrainBatches(_options.MicroBatchSize, epoch))
                .Skip(epoch == _startEpoch ? _startPosition : 0))
                yield return batch;
    }
}
