using System.Security.Cryptography;
using System.Runtime.InteropServices;
using QuantPeft.Quant.Torch;
using QuantPeft.Trainers.Adapters;
using QuantPeft.Trainers.Data;
using QuantPeft.Trainers.Loss;
using QuantPeft.Trainers.Model;
using QuantPeft.Trainers.Training;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Recipes;

/// <summary>Where DPO's reference log-probabilities come from.</summary>
public enum ReferenceSource
{
    /// <summary>None: ORPO has no reference.</summary>
    None,
    /// <summary>A forward of the same model with every adapter off, without autograd, in each step.</summary>
    AdaptersOff,
    /// <summary>Computed once for every pair before the first step (the model as it starts), then looked up.</summary>
    Cache,
}

/// <summary>
/// The loss of a preference run (DPO, ORPO) over micro-batches from <see cref="PreferenceDataset"/>: B pairs as 2B
/// rows, chosen first. The policy is the model as it trains; DPO's reference is the model the run started from,
/// which for adapters whose update starts at zero (LoRA, DoRA, VeRA, LoRAM) is the model with its adapters off, so no
/// second copy of the weights exists. Methods that start away from their base (PiSSA, OSoRA and LQ-LoRA move the
/// principal part into the adapter; full-parameter methods change the weights themselves) have no adapter-off
/// equivalent, so their reference is cached before the first step.
/// </summary>
public sealed class PreferenceObjective
{
    private readonly PreferenceOptions _options;
    private readonly CausalLm _model;
    private readonly IReadOnlyList<AttachedAdapter> _adapters;
    private readonly Dictionary<UInt128, float> _cache = [];

    /// <summary>Creates the objective for <paramref name="model"/> with <paramref name="adapters"/> attached.</summary>
    /// <param name="options">Task and its settings.</param>
    /// <param name="data">The pairs.</param>
    /// <param name="model">The policy.</param>
    /// <param name="adapters">Its adapters (empty for full-parameter methods).</param>
    /// <param name="adapterOffIsStart">Whether the model with adapters off equals the model as it starts (zero-initialised updates).</param>
    public PreferenceObjective(PreferenceOptions options, PreferenceDataset data, CausalLm model, IReadOnlyList<AttachedAdapter> adapters, bool adapterOffIsStart)
    {
        _options = options;
        Data = data;
        _model = model;
        _adapters = adapters;
        Reference = options.Task != TrainingTask.Dpo ? ReferenceSource.None
            : options.CacheReference || !adapterOffIsStart || adapters.Count == 0 ? ReferenceSource.Cache
            : ReferenceSource.AdaptersOff;
    }

    /// <summary>The pairs.</summary>
    public PreferenceDataset Data { get; }

    /// <summary>Where the reference comes from.</summary>
    public ReferenceSource Reference { get; }

    /// <summary>Reference values held by the cache (two per pair once <see cref="Prepare"/> has run).</summary>
    public int CachedRows => _cache.Count;

    /// <summary>
    /// Fills the reference cache when <see cref="Reference"/> is <see cref="ReferenceSource.Cache"/>: one forward without
    /// autograd over every train and eval pair, with the model as it is now. Call before the first step (and before a
    /// resume loads trained tensors: the reference is the starting model).
    /// </summary>
    public void Prepare(int pairsPerBatch)
    {
        if (Reference != ReferenceSource.Cache) return;
        var batches = Data.TrainBatches(pairsPerBatch, 0).Concat(Data.EvalBatches(pairsPerBatch));
        using var _ = no_grad();
        foreach (var batch in batches)
        {
            using var scope = NewDisposeScope();
            var (ids, labels) = Tensors(batch);
            var sums = SequenceLogProbs.Sum(_model.Hidden(ids), _model.LmHeadWeight, labels, _model.Spec.FinalLogitSoftcap).cpu().data<float>().ToArray();
            for (int r = 0; r < batch.BatchSize; r++) _cache[RowKey(batch, r)] = sums[r];
        }
    }

    /// <summary>
    /// The summed loss of <paramref name="batch"/>'s pairs divided by <paramref name="divisor"/> (the pairs of the whole
    /// optimizer step, so accumulated gradients are the mean over them); <paramref name="tally"/> collects the rewards.
    /// </summary>
    public Tensor Loss(MicroBatch batch, double divisor, PreferenceTally tally)
    {
        var (ids, labels) = Tensors(batch);
        // The reference goes first: its activations are gone before the policy's are kept for backward.
        Tensor? reference = Reference == ReferenceSource.None ? null : ReferenceSums(batch, ids, labels);
        var policy = SequenceLogProbs.Sum(_model.Hidden(ids), _model.LmHeadWeight, labels, _model.Spec.FinalLogitSoftcap);
        using var terms = Terms(batch, policy, reference);
        tally.Add(terms);
        return terms.Loss.sum().Div(divisor);
    }

    /// <summary>Mean loss and rewards over the held-out pairs (no autograd); NaN loss when there are none.</summary>
    public (double Loss, PreferenceMetrics Metrics) Evaluate(int pairsPerBatch)
    {
        var tally = new PreferenceTally();
        double sum = 0;
        using (no_grad())
        {
            foreach (var batch in Data.EvalBatches(pairsPerBatch))
            {
                using var scope = NewDisposeScope();
                var (ids, labels) = Tensors(batch);
                Tensor? reference = Reference == ReferenceSource.None ? null : ReferenceSums(batch, ids, labels);
                var policy = SequenceLogProbs.Sum(_model.Hidden(ids), _model.LmHeadWeight, labels, _model.Spec.FinalLogitSoftcap);
                using var terms = Terms(batch, policy, reference);
                tally.Add(terms);
                sum += terms.Loss.sum().item<float>();
            }
        }
        return (tally.Pairs > 0 ? sum / tally.Pairs : double.NaN, tally.Metrics());
    }

    private PreferenceTerms Terms(MicroBatch batch, Tensor policy, Tensor? reference)
    {
        int b = batch.BatchSize / 2;
        if (_options.Task == TrainingTask.Dpo)
            return PreferenceLoss.Dpo(policy.narrow(0, 0, b), policy.narrow(0, b, b), reference!.narrow(0, 0, b), reference.narrow(0, b, b), _options.Beta, _options.LabelSmoothing, _options.Loss);
        var counts = tensor(Counts(batch), device: policy.device);
        var mean = policy.div(counts);
        return PreferenceLoss.Orpo(mean.narrow(0, 0, b), mean.narrow(0, b, b), _options.OrpoLambda);
    }

    private Tensor ReferenceSums(MicroBatch batch, Tensor ids, Tensor labels)
    {
        if (Reference == ReferenceSource.Cache)
        {
            var values = new float[batch.BatchSize];
            for (int r = 0; r < values.Length; r++)
                values[r] = _cache.TryGetValue(RowKey(batch, r), out float v) ? v
                    : throw new RecipeException("reference cache: a row was not prepared (call Prepare before training)");
            return tensor(values, device: ids.device);
        }
        using var _ = no_grad();
        SetAdapters(false);
        try
        {
            return SequenceLogProbs.Sum(_model.Hidden(ids), _model.LmHeadWeight, labels, _model.Spec.FinalLogitSoftcap);
        }
        finally
        {
            SetAdapters(true);
        }
    }

    private void SetAdapters(bool enabled)
    {
        foreach (var a in _adapters) a.Layer.Enabled = enabled;
    }

    private (Tensor Ids, Tensor Labels) Tensors(MicroBatch batch)
    {
        var device = _model.LmHeadWeight.device;
        return (tensor(batch.InputIds, [batch.BatchSize, batch.SequenceLength], device: device),
            tensor(batch.Labels, [batch.BatchSize, batch.SequenceLength], device: device));
    }

    private static float[] Counts(MicroBatch batch)
    {
        var counts = new float[batch.BatchSize];
        for (int r = 0; r < batch.BatchSize; r++)
            for (int t = 0; t < batch.SequenceLength; t++)
                if (batch.Labels[r * batch.SequenceLength + t] != TrainingRow.IgnoreIndex) counts[r]++;
        return counts;
    }

    // A row is identified by its content (ids and labels), so the cache holds across epochs, shuffles and resumes.
    private static UInt128 RowKey(MicroBatch batch, int row)
    {
        int t = batch.SequenceLength;
        Span<byte> hash = stackalloc byte[32];
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        sha.AppendData(MemoryMarshal.AsBytes(batch.InputIds.AsSpan(row * t, t)));
        sha.AppendData(MemoryMarshal.AsBytes(batch.Labels.AsSpan(row * t, t)));
        sha.GetHashAndReset(hash);
        return MemoryMarshal.Read<UInt128>(hash);
    }
}

/// <summary>Sums the rewards of the pairs seen (one optimizer step, or one evaluation) into <see cref="PreferenceMetrics"/>.</summary>
public sealed class PreferenceTally
{
    private double _chosen, _rejected;
    private int _correct;

    /// <summary>Pairs added.</summary>
    public int Pairs { get; private set; }

    /// <summary>Adds one batch's rewards.</summary>
    public void Add(PreferenceTerms terms)
    {
        var chosen = terms.RewardsChosen.to_type(ScalarType.Float64).cpu().data<double>().ToArray();
        var rejected = terms.RewardsRejected.to_type(ScalarType.Float64).cpu().data<double>().ToArray();
        for (int i = 0; i < chosen.Length; i++)
        {
            _chosen += chosen[i];
            _rejected += rejected[i];
            if (chosen[i] > rejected[i]) _correct++;
        }
        Pairs += chosen.Length;
    }

    /// <summary>The means so far (zeros when no pair was added).</summary>
    public PreferenceMetrics Metrics() => Pairs == 0 ? new(0, 0, 0, 0)
        : new(_chosen / Pairs, _rejected / Pairs, (double)_correct / Pairs, Pairs);
}
