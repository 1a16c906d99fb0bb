using QuantPeft.Formats.Safetensors;
using QuantPeft.Memory.Planning;
using QuantPeft.Trainers.Adapters;
using QuantPeft.Trainers.Adapters.Methods;
using QuantPeft.Trainers.Data;
using QuantPeft.Trainers.Loss;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Recipes.Components;

/// <summary>
/// Runs the method's data-driven initialisation (<see cref="AdapterDescriptor.DataInit"/>: EVA, LoRA-GA) once the
/// model is loaded, on the run's first training micro-batches (epoch 0 in its seeded order, the same the first steps
/// train on), and holds the factors until the adapters are attached. The factors are written to the run folder
/// (<see cref="FileName"/>); a resumed run reads them back from there instead of reading data again, so its adapters
/// have the shapes (EVA's ranks) and frozen offsets (LoRA-GA's B₀A₀) of the run it continues, before the
/// checkpoint's trained tensors replace A and B.
/// </summary>
public sealed class DataDrivenInitialisation : IRecipeComponent
{
    /// <summary>The file in the run folder that holds the initial factors (<c>{module}.first</c>, <c>{module}.second</c>).</summary>
    public const string FileName = "data-init.safetensors";

    private Dictionary<string, SvdInitFactors>? _factors;

    /// <summary>The factors by module path, from the load until the optimizer is built; null otherwise.</summary>
    public IReadOnlyDictionary<string, SvdInitFactors>? Factors => _factors;

    /// <inheritdoc />
    public void AfterLoad(RecipeRun run)
    {
        var descriptor = AdapterRegistry.Of(run.Options.Method);
        var init = descriptor.DataInit ?? throw new RecipeException($"--method {Knob.Name(run.Options.Method)} has no data-driven initialisation");
        if (run.Options.ResumeFrom is { } resume)
        {
            string file = Path.Combine(TrainingCheckpoint.RunFolderOf(TrainingCheckpoint.Resolve(resume)), FileName);
            _factors = Read(file, run.Options.Method, run.Device);
            return;
        }
        var data = run.Data ?? throw new RecipeException($"--method {Knob.Name(run.Options.Method)} initialises from SFT training batches; a --preference run has none");
        var batches = new InitBatches(run, data);
        var options = new LoraOptions(run.Options.Rank, run.Options.Alpha);
        _factors = new Dictionary<string, SvdInitFactors>(init(new DataInitRequest(run.Model, run.Targets, options, batches)), StringComparer.Ordinal);
        if (run.Options.RunFolder is { } folder)
        {
            Directory.CreateDirectory(folder);
            SafetensorsWriter.WriteFile(Path.Combine(folder, FileName),
                _factors.OrderBy(kv => kv.Key, StringComparer.Ordinal).SelectMany(kv => new[]
                {
                    SafetensorsModelSource.Entry(kv.Key + ".first", kv.Value.First), SafetensorsModelSource.Entry(kv.Key + ".second", kv.Value.Second),
                }).ToList(),
                new Dictionary<string, string> { ["format"] = "pt", ["method"] = Knob.Name(run.Options.Method) });
        }
    }

    /// <inheritdoc />
    public void BeforeOptimizer(RecipeRun run) => Free();

    /// <inheritdoc />
    public void OnDispose(RecipeRun run) => Free();

    private void Free()
    {
        if (_factors is not null)
            foreach (var f in _factors.Values) f.Dispose();
        _factors = null;
    }

    private static Dictionary<string, SvdInitFactors> Read(string file, TrainingMethod method, Device device)
    {
        if (!File.Exists(file))
            throw new RecipeException($"--resume: '{file}' is missing; --method {Knob.Name(method)} resumes from the initial factors its first run wrote there");
        using var source = new SafetensorsModelSource(file);
        var result = new Dictionary<string, SvdInitFactors>(StringComparer.Ordinal);
        foreach (var name in source.Names.Where(n => n.EndsWith(".first", StringComparison.Ordinal)))
        {
            string path = name[..^".first".Length];
            if (!source.Names.Contains(path + ".second")) throw new RecipeException($"--resume: '{file}': '{path}.second' is missing");
            using var first = source.Get(name);
            using var second = source.Get(path + ".second");
            result[path] = new SvdInitFactors(method, first.to(ScalarType.Float32, device, copy: true).DetachFromDisposeScope(),
                second.to(ScalarType.Float32, device, copy: true).DetachFromDisposeScope(), null);
        }
        return result;
    }

    // The run's training micro-batches from the start of epoch 0 (later epochs follow when the data is short).
    private sealed class InitBatches(RecipeRun run, TrainingDataset data) : IInitBatches
    {
        private const int Limit = 32;
        private readonly List<MicroBatch> _batches = Endless(run, data).Take(Limit).ToList();

        public int Count => _batches.Count;

        public Tensor Loss(int index, int of)
        {
            var model = run.Model;
            var batch = _batches[index];
            double divisor = Math.Max(1, _batches.Take(of).Sum(b => b.TargetCount));
            using var scope = NewDisposeScope();
            var (ids, labels) = MicroBatchTensors.Of(batch, model.LmHeadWeight.device);
            using var segments = MicroBatchTensors.Segments(batch, model.LmHeadWeight.device);
            var hidden = model.Hidden(ids, segments);
            var loss = ChunkedCrossEntropy.Compute(hidden, model.LmHeadWeight, labels, divisor: divisor, finalLogitSoftcap: model.Spec.FinalLogitSoftcap);
            return loss.MoveToOuterDisposeScope();
        }

        public void Forward(int index)
        {
            var model = run.Model;
            var batch = _batches[index];
            using var scope = NewDisposeScope();
            var (ids, _) = MicroBatchTensors.Of(batch, model.LmHeadWeight.device);
            using var segments = MicroBatchTensors.Segments(batch, model.LmHeadWeight.device);
            model.Hidden(ids, segments);
        }

        public Tensor RealTokens(int index)
        {
            var batch = _batches[index];
            var mask = new bool[batch.BatchSize * batch.SequenceLength];
            for (int row = 0; row < batch.BatchSize; row++)
                for (int t = 0; t < Math.Min(batch.Lengths[row], batch.SequenceLength); t++)
                    mask[row * batch.SequenceLength + t] = true;
            return tensor(mask);
        }

        private static IEnumerable<MicroBatch> Endless(RecipeRun run, TrainingDataset data)
        {
            for (int epoch = 0; epoch < Limit; epoch++)
                foreach (var batch in data.TrainBatches(run.Options.MicroBatchSize, epoch))
                    yield return batch;
        }
    }
}
