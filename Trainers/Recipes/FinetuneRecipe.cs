using QuantPeft.Trainers.Training;
using System.Diagnostics;
using System.Text.Json.Nodes;
using QuantPeft.Formats.HuggingFace;
using QuantPeft.Formats.Peft;
using QuantPeft.Memory.Planning;
using QuantPeft.Memory.Probes;
using QuantPeft.Optimizers;
using QuantPeft.Optimizers.GaLore;
using QuantPeft.Optimizers.InBackward;
using QuantPeft.Trainers.Adapters;
using QuantPeft.Trainers.Data;
using QuantPeft.Trainers.Loss;
using QuantPeft.Trainers.Model;
using QuantPeft.Trainers.Strategies;
using QuantPeft.Trainers.Pruning;
using QuantPeft.Trainers.Tokenizers;
using TorchSharp;
using Parameter = TorchSharp.Modules.Parameter;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Recipes;

/// <summary>Loss, perplexity and exact match at one point of a run.</summary>
/// <param name="Loss">Mean cross-entropy per target token on the eval rows.</param>
/// <param name="Perplexity">exp(Loss).</param>
/// <param name="ExactMatch">Share of eval prompts answered exactly (null when the eval set has no prompt/completion records).</param>
public sealed record EvalResult(double Loss, double Perplexity, double? ExactMatch)
{
    /// <summary>Rewards, margin and accuracy on the held-out pairs of a preference run (then Loss is the preference loss); null for SFT.</summary>
    public PreferenceMetrics? Preference { get; init; }
}

/// <summary>One optimizer step as reported to the progress display.</summary>
/// <param name="Step">1-based optimizer step.</param>
/// <param name="Loss">Mean loss per target token over the step's micro-batches.</param>
/// <param name="LearningRate">The learning rate used.</param>
/// <param name="TokensPerSecond">Input tokens per second of wall time for this step.</param>
/// <param name="RssBytes">Process resident set after the step.</param>
public sealed record StepReport(int Step, double Loss, double LearningRate, double TokensPerSecond, long RssBytes);

/// <summary>
/// QLoRA-style fine-tuning of one adapter, readable top to bottom: <see cref="Setup"/> loads the model with a
/// frozen (by default NF4 + double-quant) base, attaches the adapter and builds AdamW; <see cref="Train"/> runs
/// micro-batches with gradient accumulation, a warm-up + cosine schedule, gradient clipping and periodic eval;
/// <see cref="Evaluate"/> measures loss, perplexity and exact match; <see cref="Save"/> writes the adapter in
/// PEFT format atomically; <see cref="Cleanup"/> frees everything.
/// </summary>
public sealed partial class FinetuneRecipe : IDisposable
{
    private FinetuneOptions _options;
    private CausalLm? _model;
    private Optimizer? _optimizer;
    private IReadOnlyList<AttachedAdapter> _adapters = [];
    private IReadOnlyList<(string Name, Parameter Param)> _trainable = [];

    // On the CPU, an optimizer step over a tensor whose f32 copies are above glibc's 32 MiB mmap ceiling gets those
    // copies as fresh mappings, which cannot reuse the heap arenas' freed blocks; forward and backward (and under
    // layer-wise updates every in-backward update) leave such blocks freed but resident, and they would sit beside
    // the step's copies: ≈ 930 MiB beside a 3.6 GB live peak for 8-bit GaLore layer-wise on the TinyLlama shape
    // (perf/results/bench-memory-cpu.md). Those steps hand the freed pages back first; adapter-only steps are small,
    // so there the trim would only cost page faults.
    private bool _trimBeforeStep;
    private const long StepTrimElements = (32L << 20) / 4;

    // On the CPU under gradient checkpointing, adapter gradients are allocated once, right after the optimizer, and
    // zeroed in place after each step rather than dropped. Dropped, every step's backward allocates them again (f32,
    // 0.5–30 MiB each, in the heap arenas) between the recomputed blocks' transients, and each one that lands past a
    // transient's hole pins the arena above it: on the Llama-2-70B QLoRAM step (seq 512) the arenas grew 5.35 GB for a
    // 2.8 GB rise in live tensors, 3.17 GB once kept (perf/results/qloram-70b-cpu.md). Without checkpointing backward
    // only frees activations, the gradients fill their holes, and kept gradients would only be alive earlier: +27 MiB
    // of live peak on the TinyLlama QLoRA step for no change in what the arenas keep (bench-memory-cpu.md).
    // The planner prices these gradients for the whole backward either way.
    private bool _persistentGrads;

    // On the CPU the forward interleaves each block's short-lived tensors (decoded slabs, f32 adapter copies, attention
    // and MLP temporaries, 1–32 MiB each at a few hundred tokens) with the activations that survive to backward; the
    // freed ones stay resident in glibc's arenas as holes between kept tensors, and backward then grows the heap above
    // them. On the TinyLlama QLoRA step at batch 2 × seq 128 that was 494 MiB resident above the live tensors' 1,645 MiB
    // (perf/results/bench-memory-matrix.md). One trim between forward and backward hands those pages back once per
    // micro-batch, where a trim after every block cost 40 % of the step (bench-memory-cpu.md).
    private bool _trimAfterForward;
    private VeraSharedMatrices? _vera;
    private LisaSchedule? _lisa;
    private OptimizerInBackward? _inBackward;
    private LoramPruner? _pruner;
    private PreferenceObjective? _preference;

    /// <summary>Creates the recipe; nothing is loaded until <see cref="Setup"/>.</summary>
    public FinetuneRecipe(FinetuneOptions options)
    {
        options.Validate();
        options.EnsureRunnable();
        _options = options;
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

    /// <summary>Trainable scalars: the adapters', or for full-parameter methods every weight that can train (all of LISA's layers).</summary>
    public long TrainableParameters => FullParameterTraining.TrainsBaseWeights(_options.Method)
        ? _trainable.Sum(p => p.Param.numel())
        : ModelAdapters.TrainableCount(_adapters);

    /// <summary>The LISA schedule (active layers, trainable set) when the method is LISA, else null.</summary>
    public LisaSchedule? Lisa => _lisa;

    /// <summary>The optimizer (for LISA: the current period's).</summary>
    public IOptimizer CurrentOptimizer => _optimizer ?? throw new InvalidOperationException("call Setup first");

    /// <summary>Bytes of the frozen base projections as stored (4-bit codes + scales, or bf16).</summary>
    public long BaseProjectionBytes { get; private set; }

    /// <summary>LoRAM: the kept heads and channels of every block (after <see cref="Setup"/>); null for other methods.</summary>
    public PruningPlan? Pruning => _pruner?.Plan;

    /// <summary>The largest resident set seen at the end of a step or an evaluation.</summary>
    public long PeakRssBytes { get; private set; }

    /// <summary>The device the whole run lives on (<see cref="FinetuneOptions.Device"/>).</summary>
    public Device Device => _device ??= torch.device(_options.Device);

    private Device? _device;

    /// <summary>
    /// On a CUDA run, the largest device memory in use seen at the end of a step or an evaluation (<c>cudaMemGetInfo</c>:
    /// total − free, so other processes on the same GPU count too); null on the CPU or when the CUDA runtime does not answer.
    /// </summary>
    public long? PeakDeviceBytes { get; private set; }

    /// <summary>Which memory <see cref="PeakBytes"/> shows: <c>cpu RSS</c> or <c>cuda:N used</c>.</summary>
    public string PeakSource => PeakDeviceBytes is null ? "cpu RSS" : $"{Device} used (cudaMemGetInfo)";

    /// <summary>The run's peak in the memory of its device: <see cref="PeakDeviceBytes"/> on CUDA, <see cref="PeakRssBytes"/> otherwise.</summary>
    public long PeakBytes => PeakDeviceBytes ?? PeakRssBytes;

    /// <summary>Loads tokenizer, data and model (quantizing the base on load), attaches the adapter, builds the optimizer.</summary>
    /// <exception cref="RecipeException">The sequence length exceeds the model's limit, or the optimizer is unknown.</exception>
    public void Setup()
    {
        Spec = ModelFolder.ReadSpec(_options.ModelFolder);
        // Phi-3's fused projections carry one adapter each; every later reader of the targets sees the model's own names.
        _options = _options with { Targets = ModelAdapters.ForModel(_options.Targets, Spec) };
        PrequantizedOptions.Check(_options);
        if (_options.SequenceLength > Spec.MaxPositionEmbeddings)
            throw new RecipeException($"--seq: {_options.SequenceLength} exceeds the model's max_position_embeddings {Spec.MaxPositionEmbeddings} ({Path.Combine(_options.ModelFolder, ModelConfigReader.FileName)})");
        var targets = ModelAdapters.ResolveTargets(_options.Targets);
        Tokenizer = ModelFolder.ReadTokenizer(_options.ModelFolder);

        // One example per row, or several kept apart (--packing on); by default by the data's shape (docs/data.md).
        var dataOptions = new DatasetOptions
        {
            SequenceLength = _options.SequenceLength,
            Layout = _options.Packing switch { null => RowLayout.ByShape, true => RowLayout.Segmented, false => RowLayout.Padded },
            Truncation = _options.Truncation,
            Fields = DatasetFields.Parse(_options.Fields),
            EvalFraction = _options.EvalPath is null ? _options.EvalFraction : 0,
            Seed = _options.Seed,
        };
        ChatTemplate = QuantPeft.Trainers.Data.ChatTemplate.Resolve(_options.ChatTemplate, _options.ModelFolder);
        var pairs = _options.Preference is null ? null : PreferenceSetup.Load(_options, Tokenizer, ChatTemplate);
        if (pairs is null) Data = TrainingDataset.Load(_options.DataPath, Tokenizer, dataOptions, Spec.MaxPositionEmbeddings, ChatTemplate, evalPath: _options.EvalPath);

        _model = LoadModel(Spec);
        // The loader trims the C heap every 128 MiB streamed; the last tensors' staging blocks are still kept, and
        // training would otherwise start on top of them (up to the largest tensor's worth, freed but resident).
        // On a GPU the run's memory is the device's, which the C heap does not hold.
        if (RunDevice.IsHost(Device)) NativeHeap.RecordResidentBaseline();   // trims, then notes what is resident outside the heap
        BaseProjectionBytes = _model.modules().OfType<QuantizedBaseLinear>().Sum(q => q.StorageBytes)
            + _model.modules().OfType<DenseLinear>().Sum(d => d.Weight.numel() * d.Weight.ElementSize)
            + _model.modules().OfType<LqLoraBaseLinear>().Sum(q => q.StorageBytes);
        _trainable = MakeTrainable(_model, targets);
        if (pairs is not null)
        {
            // Before a resume loads trained tensors: a cached reference is the model the run starts from.
            _preference = new PreferenceObjective(_options.Preference!, pairs, _model, _adapters, PreferenceSetup.AdapterOffIsStart(_options));
            _preference.Prepare(_options.MicroBatchSize);
        }
        _trimBeforeStep = RunDevice.IsHost(Device) && _trainable.Any(p => p.Param.numel() >= StepTrimElements);
        _optimizer = BuildOptimizer(_trainable);
        _trimAfterForward = RunDevice.IsHost(Device);
        // Set before the first evaluation: an evaluation's forward churns the same per-block transients as training's.
        if (_options.HeapGuard && RunDevice.IsHost(Device) && !NativeHeap.IsConfigured && Environment.GetEnvironmentVariable(HeapGuardVariable) != "off")
            _model.Decoder.HeapRetentionLimit = HeapRetentionLimit();
        _persistentGrads = RunDevice.IsHost(Device) && _options.Checkpointing
            && !FullParameterTraining.TrainsBaseWeights(_options.Method);
        if (_persistentGrads)
            foreach (var (_, p) in _trainable) p.grad = zeros_like(p).DetachFromDisposeScope();
        if (_options.ResumeFrom is not null) Resume(_options.ResumeFrom);
        SampleMemory();
    }

    // Phase 1: the model, its base projections stored as the options ask (quantized while the checkpoint streams in).
    private CausalLm LoadModel(ModelSpec spec)
    {
        // A pre-quantized folder decides the bases itself (its format, per-matrix LQ-LoRA configurations); Setup has
        // checked that the options agree with it.
        var prequantized = PrequantizedFolder.Read(_options.ModelFolder);
        var device = Device;
        var factory = prequantized is not null ? prequantized.Factory(_options.Rank, new LoraOptions(_options.Rank, _options.Alpha).Scaling, ScalarType.BFloat16, device)
            : _options.Weights == WeightFormat.LqLora ? LqLoraFactory(device)
            : BaseWeights.Factory(_options.Weights, _options.DoubleQuant, ScalarType.BFloat16, device);
        // PiSSA and OSoRA decompose each target's full-precision weight as it streams in; only the residual reaches the base.
        if (_options.Method is TrainingMethod.Pissa or TrainingMethod.Osora)
            factory = SvdInitOnLoad.Wrap(factory, _options.Method == TrainingMethod.Pissa ? SvdInitKind.Pissa : SvdInitKind.Osora,
                _options.Rank, new LoraOptions(_options.Rank, _options.Alpha).Scaling, ModelAdapters.ResolveTargets(_options.Targets));
        var decoder = new DecoderOptions
        {
            ComputeDType = ScalarType.BFloat16,
            Device = device,
            LinearFactory = factory,
            GradientCheckpointing = _options.Checkpointing,
            Attention = _options.Attention,
            // LoRAM: blocks are built narrow and each tensor is cut as it streams in (QLoRAM when the base is 4-bit).
            Pruning = _pruner = _options.Method == TrainingMethod.Loram
                ? new LoramPruner(spec, _options.Prune, PruningCriteria.Parse(_options.PruneCriterion), _options.Seed)
                : null,
        };
        return ModelFolder.Load(_options.ModelFolder, spec, decoder);
    }

    // Phase 2: what trains. Adapter methods attach adapters and freeze everything else; full-parameter methods
    // (full, GaLore, Natural GaLore, LISA) train the dense base in place.
    private IReadOnlyList<(string Name, Parameter Param)> MakeTrainable(CausalLm model, IReadOnlyList<string> targets)
    {
        if (FullParameterTraining.TrainsBaseWeights(_options.Method))
            return FullParameterTraining.Prepare(model);
        var lora = new LoraOptions(_options.Rank, _options.Alpha);
        var method = _options.Method switch
        {
            TrainingMethod.Dora => AdapterMethod.Dora,
            TrainingMethod.Pissa => AdapterMethod.Pissa,
            TrainingMethod.Osora => AdapterMethod.Osora,
            TrainingMethod.Vera => AdapterMethod.Vera,
            _ => AdapterMethod.Lora,
        };
        if (method == AdapterMethod.Vera)
        {
            var (maxIn, maxOut) = ModelAdapters.VeraDimensions(model, targets);
            _vera = new VeraSharedMatrices(_options.Rank, maxIn, maxOut, _options.Seed, device: model.LmHeadWeight.device);
        }
        _adapters = ModelAdapters.Attach(model, method, lora, targets, _options.Seed, _vera);
        return ModelAdapters.TrainableParameters(_adapters);
    }

    // Phase 3: the optimizer over the trainable parameters. LISA rebuilds it over each period's layers (BeforeStep);
    // layer-wise mode hooks the projections so their updates run inside backward.
    private Optimizer BuildOptimizer(IReadOnlyList<(string Name, Parameter Param)> trainable)
    {
        if (_options.Method == TrainingMethod.Lisa)
        {
            _lisa = new LisaSchedule(Model, new LisaSampler(Model.Layers.Count, _options.LisaLayers, _options.Seed), _options.LisaInterval, CreateOptimizer);
            return _lisa.BeforeStep(0, null);
        }
        var optimizer = CreateOptimizer(trainable);
        if (_options.Layerwise) _inBackward = FullParameterTraining.AttachInBackward(Model, optimizer);
        return optimizer;
    }

    private Optimizer CreateOptimizer(IReadOnlyList<(string Name, Parameter Param)> trainable)
    {
        var group = new ParamGroupOptions(Lr: _options.LearningRate, WeightDecay: _options.WeightDecay);
        GaLoreOptions? galore = _options.Method switch
        {
            TrainingMethod.Galore => new GaLoreOptions(Rank: _options.Rank),
            // The released Natural GaLore projects both sides (its Tucker factors of a matrix are U and V).
            TrainingMethod.NaturalGalore => new GaLoreOptions(Rank: _options.Rank, ProjectionType: GaLoreProjectionType.Full, Natural: new NaturalGaLoreOptions()),
            _ => null,
        };
        try
        {
            return OptimizerFactory.Create(_options.Optimizer, FullParameterTraining.TrainsBaseWeights(_options.Method)
                ? FullParameterTraining.Groups(trainable, group, galore)
                : [new ParamGroup("adapters", trainable, group)], DevicePaging(trainable));
        }
        catch (OptimizerConfigException e)
        {
            throw new RecipeException(galore is null ? $"--optimizer: {e.Message}" : $"--optimizer {_options.Optimizer} --rank {_options.Rank}: {e.Message}");
        }
    }

    // Paged states on a GPU: pinned host pages, with room on the device for the f32 moments (m and v) of the two largest
    // parameters, the one being updated and the next one prefetched; the planner prices the paged share of the device
    // as the largest buffer (docs/optimizers.md). The CPU keeps the factory's default pager.
    private OptimizerBuildOptions? DevicePaging(IReadOnlyList<(string Name, Parameter Param)> trainable)
    {
        if (Device.type != DeviceType.CUDA || !_options.Optimizer.StartsWith("paged-", StringComparison.Ordinal) || trainable.Count == 0)
            return null;
        long largest = trainable.Max(p => p.Param.numel());
        return new OptimizerBuildOptions(Pager: new QuantPeft.Memory.Paging.PagerOptions(2 * 2 * 4 * largest, Device, QuantPeft.Memory.Paging.PageBacking.PinnedHost));
    }

    // LQ-LoRA: a scoring pass over the checkpoint assigns NF2/NF3/NF4 per projection under the bit budget; the
    // loading pass then decomposes each target W ≈ Q + L1·L2 as it streams in.
    private LinearFactory LqLoraFactory(Device device)
    {
        var targets = ModelAdapters.ResolveTargets(_options.Targets);
        double scaling = new LoraOptions(_options.Rank, _options.Alpha).Scaling;
        try
        {
            var configs = ModelFolder.WithWeights(_options.ModelFolder, source => LqLoraPlan.Allocate(source, targets, _options.Rank, _options.LqLoraBits));
            return LqLoraPlan.Factory(configs, targets, _options.Rank, scaling, ScalarType.BFloat16, device);
        }
        catch (QuantPeft.Quant.QuantInputException e)
        {
            throw new RecipeException($"--weights {Knob.Name(_options.Weights, _options.LqLoraBits)}: {e.Message}");
        }
    }

    /// <summary>
    /// Environment variable that turns the CPU heap guard between decoder blocks off (<c>off</c>), for comparing its
    /// speed; the measured peak then includes whatever freed memory glibc keeps. Pinned heap thresholds
    /// (<c>QPEFT_NATIVE_HEAP=pinned</c>) make the guard unnecessary, so it is off under them too.
    /// </summary>
    public const string HeapGuardVariable = "QPEFT_HEAP_GUARD";

    /// <summary>
    /// The freed bytes the C heap may keep between decoder blocks on the CPU: the planner's fragmentation share of what
    /// is live once the model and adapters are set up, so that what the heap keeps above the live tensors
    /// stays inside the share the plan prices of the (larger) step peak; at least 16 MiB, below which a trim would cost
    /// more page faults than it saves.
    /// </summary>
    private static long HeapRetentionLimit() =>
        Math.Max(16L << 20, (long)((NativeHeap.Read()?.LiveBytes ?? 0) * Budget.DefaultFragmentation));

    /// <summary>
    /// Runs <see cref="FinetuneOptions.Steps"/> optimizer steps; every step is written to <paramref name="log"/> and
    /// reported to <paramref name="onStep"/>; eval loss every <see cref="FinetuneOptions.EvalEvery"/> steps.
    /// </summary>
    public void Train(MetricsWriter log, Action<StepReport>? onStep = null)
    {
        var model = Model;
        var data = Data;
        int warmup = (int)Math.Round(_options.Steps * _options.WarmupRatio);
        var schedule = new WarmupCosineSchedule(_options.LearningRate, Math.Min(warmup, _options.Steps - 1), _options.Steps);
        _checkpointRoot = Path.GetDirectoryName(Path.GetFullPath(log.FilePath));
        using var batches = EndlessBatches(data).GetEnumerator();
        model.train();
        for (int step = _startStep; step < _options.Steps; step++)
        {
            var clock = Stopwatch.StartNew();
            BeforeStep(step);
            var optimizer = _optimizer!;
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
                var (ids, labels) = Tensors(batch, model);
                using var segments = Segments(batch, model);
                TorchSharp.torch.Tensor loss;
                if (_preference is not null) loss = _preference.Loss(batch, targets, tally!);
                else
                {
                    var hidden = model.Hidden(ids, segments);
                    if (_trimAfterForward) NativeHeap.Trim();
                    loss = ChunkedCrossEntropy.Compute(hidden, model.LmHeadWeight, labels, divisor: targets,
                        finalLogitSoftcap: model.Spec.FinalLogitSoftcap);
                }
                loss.backward();
                stepLoss += loss.item<float>();
                tokens += batch.TokenCount;
            }
            // Layer-wise: the projections were already updated inside backward, so there is no global norm to clip
            // by (galore-torch's layer-wise mode does not clip either); the step updates what still has a gradient.
            double? norm = _inBackward is not null ? null
                : nn.utils.clip_grad_norm_((_lisa?.Trainable ?? _trainable).Select(p => p.Param), _options.MaxGradNorm);
            if (_trimBeforeStep) NativeHeap.Trim();
            optimizer.Step();
            optimizer.ZeroGrad(setToNone: !_persistentGrads);
            AfterStep(step);

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

    // Runs before the micro-batches of optimizer step `step` (0-based): strategies that change the trainable set
    // over time (LISA's layer sampling) act here.
    private void BeforeStep(int step)
    {
        if (_lisa is not null) _optimizer = _lisa.BeforeStep(step, _optimizer);
    }

    // Runs after optimizer step `step` (0-based) has been applied: periodic checkpoints act here.
    private void AfterStep(int step)
    {
        MaybeSaveCheckpoint(step);
    }

    /// <summary>Eval loss and perplexity over all eval rows, plus exact match on up to <see cref="FinetuneOptions.ExactMatchRecords"/> records.</summary>
    public EvalResult Evaluate(bool exactMatch = true)
    {
        var model = Model;
        if (_preference is not null) return EvaluatePreference(model);
        var data = Data!;
        model.eval();
        double sum = 0, count = 0;
        using (no_grad())
        {
            // Rows of the training micro-batch: the evaluation then holds no more than a training step's transients
            // (and no saved activations), so the planned peak covers it. At 32 rows of 256 tokens the f32 loss chunk
            // (1024 × vocab) and the MLP temporaries of one batch outgrew the whole planned step of a batch-2 run.
            foreach (var batch in data.EvalBatches(_options.MicroBatchSize))
            {
                using var scope = NewDisposeScope();
                var (ids, labels) = Tensors(batch, model);
                int n = batch.TargetCount;
                if (n == 0) continue;
                using var segments = Segments(batch, model);
                sum += ChunkedCrossEntropy.Compute(model.Hidden(ids, segments), model.LmHeadWeight, labels, divisor: 1,
                    finalLogitSoftcap: model.Spec.FinalLogitSoftcap).item<float>();
                count += n;
            }
        }
        double loss = count > 0 ? sum / count : double.NaN;
        double? accuracy = null;
        if (exactMatch && _options.ExactMatchRecords > 0 && data.EvalRecords.Any(r => r.Prompt is not null && r.Completion is not null))
            accuracy = GreedyDecoder.ExactMatch(model, Tokenizer!, data.EvalRecords.Take(_options.ExactMatchRecords).ToList());
        SampleMemory();
        return new EvalResult(loss, Math.Exp(loss), accuracy);
    }

    private EvalResult EvaluatePreference(CausalLm model)
    {
        model.eval();
        var (loss, metrics) = _preference!.Evaluate(Math.Max(_options.MicroBatchSize, 16));
        SampleMemory();
        return new EvalResult(loss, Math.Exp(loss), null) { Preference = metrics };
    }

    /// <summary>
    /// Writes the adapter to <paramref name="folder"/> as PEFT reads it (<c>adapter_config.json</c> +
    /// <c>adapter_model.safetensors</c>; LoRA/DoRA as PEFT LoRA, PiSSA as a rank-2r LoRA on the original base, VeRA as
    /// PEFT VeRA, OSoRA as <c>OSORA</c>, see docs/formats.md) through a temporary folder and a rename, so an
    /// interrupted save leaves no half-written adapter. Methods that train the base weights (full, GaLore, Natural
    /// GaLore, LISA) write the whole model as a Hugging Face model folder instead.
    /// </summary>
    /// <remarks>A LoRAM adapter is saved recovered (<see cref="AdapterRecovery"/>): at the unpruned model's shapes.</remarks>
    public void Save(string folder)
    {
        if (FullParameterTraining.TrainsBaseWeights(_options.Method))
            FullModelSaver.Save(Model, _options.ModelFolder, folder);
        else
            RunAdapterFormats.Save(folder, _options, _adapters, _vera, Pruning);
    }

    /// <summary>
    /// Copies a saved adapter (from <see cref="Save"/>) into the attached adapters, checking every name and shape.
    /// A PiSSA export is a plain LoRA on the original base: load it into a <c>--method lora</c> run of rank 2r.
    /// </summary>
    /// <exception cref="RecipeException">The adapter is of another kind, or lacks a tensor this model's adapters need.</exception>
    public void LoadAdapter(string folder)
    {
        string peftType = RunAdapterFormats.ReadPeftType(folder);
        string expected = RunAdapterFormats.PeftType(_options.Method);
        if (peftType != expected)
            throw new RecipeException($"{Path.Combine(folder, PeftAdapter.ConfigFileName)}: peft_type \"{peftType}\" cannot load into a --method {Knob.Name(_options.Method)} model (expects \"{expected}\")");
        if (_options.Method == TrainingMethod.Pissa || _options.Weights == WeightFormat.LqLora)
            throw new RecipeException($"{folder}: a {(_options.Method == TrainingMethod.Pissa ? "PiSSA" : "LQ-LoRA")} adapter is exported as a rank-{2 * _options.Rank} LoRA on the original weights; load it with --method lora --rank {2 * _options.Rank} --alpha {2 * _options.Alpha}");
        if (peftType == "LORA")
            using (PeftAdapter.Load(folder)) { }   // validates pairs, shapes and ranks against the config
        using var source = new SafetensorsModelSource(Path.Combine(folder, PeftAdapter.WeightsFileName));
        var names = source.Names.ToHashSet(StringComparer.Ordinal);
        Tensor Get(string key) => names.Contains(key) ? source.Get(key) : throw new RecipeException($"{source.Origin}: missing tensor '{key}'");
        if (_vera is not null)
        {
            using var a = Get(RunAdapterFormats.VeraAKey);
            using var b = Get(RunAdapterFormats.VeraBKey);
            if (!a.shape.SequenceEqual(_vera.A.shape) || !b.shape.SequenceEqual(_vera.B.shape))
                throw new RecipeException($"{source.Origin}: vera_A/vera_B have shapes [{string.Join(", ", a.shape)}]/[{string.Join(", ", b.shape)}], this model needs [{string.Join(", ", _vera.A.shape)}]/[{string.Join(", ", _vera.B.shape)}]");
            using (no_grad())
            {
                _vera.A.copy_(a);
                _vera.B.copy_(b);
            }
        }
        foreach (var a in _adapters)
        {
            var tensors = new Dictionary<string, Tensor>();
            try
            {
                foreach (var local in a.Layer.AdapterTensors().Keys)
                    tensors[local] = Get(LoraTensorNames.Prefix + a.ModulePath + "." + local);
                a.Layer.LoadAdapterTensors(tensors);
            }
            finally
            {
                foreach (var t in tensors.Values) t.Dispose();
            }
        }
    }

    /// <summary>Frees the optimizer state and the model.</summary>
    public void Cleanup()
    {
        _optimizer?.Dispose();
        _optimizer = null;
        _model?.Dispose();
        _model = null;
        foreach (var t in _adapters.SelectMany(a => a.Initial?.Values ?? [])) t.Dispose();
        _adapters = [];
        _vera?.Dispose();
        _vera = null;
    }

    /// <inheritdoc />
    public void Dispose() => Cleanup();

    // From the resume position on (epoch 0, batch 0 for a fresh run): the first epoch is entered at the micro-batch a checkpoint stopped before.
    private IEnumerable<MicroBatch> EndlessBatches(TrainingDataset? data)
    {
        for (int epoch = _startEpoch; ; epoch++)
            foreach (var batch in (_preference?.Data.TrainBatches(_options.MicroBatchSize, epoch) ?? data!.TrainBatches(_options.MicroBatchSize, epoch))
                .Skip(epoch == _startEpoch ? _startPosition : 0))
                yield return batch;
    }

    private static (Tensor Ids, Tensor Labels) Tensors(MicroBatch batch, CausalLm model)
    {
        var device = model.LmHeadWeight.device;
        return (tensor(batch.InputIds, [batch.BatchSize, batch.SequenceLength], device: device),
            tensor(batch.Labels, [batch.BatchSize, batch.SequenceLength], device: device));
    }

    // Rows that pack several examples apart carry their segments; the model then restarts positions and confines attention.
    private static PackedSegments? Segments(MicroBatch batch, CausalLm model) =>
        batch.SegmentIds is null ? null
        : PackedSegments.FromIds(batch.SegmentIds, batch.PositionIds!, batch.BatchSize, batch.SequenceLength, model.LmHeadWeight.device);

    private long SampleMemory()
    {
        using var process = Process.GetCurrentProcess();
        long rss = process.WorkingSet64;
        PeakRssBytes = Math.Max(PeakRssBytes, Math.Max(rss, process.PeakWorkingSet64));
        if (Device.type == DeviceType.CUDA && CudaMemoryProbe.Query() is { Available: true } info)
            PeakDeviceBytes = Math.Max(PeakDeviceBytes ?? 0, info.UsedBytes);
        return rss;
    }
}
