using QuantPeft.Memory.Planning;
using QuantPeft.Trainers.Adapters.Methods;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Adapters;

/// <summary>
/// EVA's initialisation (Paischer et al. 2024, "One Initialization to Rule them All"): every target's A is the top
/// right-singular vectors of the stacked inputs X [tokens, in] the projection sees on the run's first micro-batches,
/// computed incrementally, and the total rank r × targets is redistributed over the targets by explained variance.
/// B starts at zero, so the update starts at zero.
/// </summary>
/// <remarks>
/// Incremental SVD: each target keeps the top k = round(ρ·r) singular directions of what it has seen as the rows
/// diag(σ)·Vᵀ [k, in]; a micro-batch's real-token inputs X_b are stacked under them and the top k of the SVD of
/// [diag(σ)Vᵀ; X_b] are kept, which is exact while the inputs seen span at most k dimensions and the usual truncated
/// update otherwise. A target is read no further once the components its current rank uses have converged (each
/// |cos| ≥ τ against the previous micro-batch's), as PEFT's <c>eva</c> init does; reading also ends after
/// <see cref="IInitBatches.Count"/> micro-batches. The explained-variance ratio of component i is σᵢ² / ‖X‖²_F
/// (uncentred: the update A·x sees x itself, not x minus its mean). Ranks: every target keeps one component (a target
/// without an adapter would change the module set PEFT expects); the other r × targets − targets go to the largest
/// ratios over all targets' remaining components, at most k per target. Memory: k × in f32 per target, plus one
/// micro-batch's inputs to one target and their SVD at a time.
/// </remarks>
public static class EvaInit
{
    /// <summary>ρ: each target may take up to ρ·r components (PEFT's <c>EvaConfig.rho</c> default).</summary>
    public const double Rho = 2.0;

    /// <summary>τ: a component has converged when |cos| with its previous estimate is at least this (PEFT's default).</summary>
    public const double Tau = 0.99;

    /// <summary>The micro-batches EVA reads at most.</summary>
    public const int MaxBatches = 32;

    private sealed class Sketch(long inFeatures, int k) : IDisposable
    {
        public long InFeatures { get; } = inFeatures;
        public int K { get; } = k;
        public Tensor? Rows;          // diag(σ)·Vᵀ, [≤ k, in]
        public Tensor? Previous;      // Vᵀ before the last update
        public double Energy;         // ‖X‖²_F of everything seen
        public bool[] Converged = new bool[k];
        public bool Reading = true;

        public void Dispose()
        {
            Rows?.Dispose();
            Previous?.Dispose();
        }
    }

    /// <summary>The data-driven init of <see cref="TrainingMethod.Eva"/>.</summary>
    public static IReadOnlyDictionary<string, SvdInitFactors> Compute(DataInitRequest request)
    {
        var (model, targets, options, batches) = (request.Model, request.Targets, request.Options, request.Batches);
        int r = options.Rank;
        var list = ProjectionProbe.Targets(model, targets).ToList();
        int k0 = (int)Math.Round(r * Rho);
        foreach (var (path, b) in list)
            if (r > Math.Min(b.InFeatures, b.OutFeatures))
                throw new AdapterException($"'{path}': EVA rank {r} exceeds min(in, out) = {Math.Min(b.InFeatures, b.OutFeatures)}");
        var sketches = list.ToDictionary(t => t.Path, t => new Sketch(t.Base.InFeatures, (int)Math.Min(k0, Math.Min(t.Base.InFeatures, t.Base.OutFeatures))), StringComparer.Ordinal);
        var ranks = list.ToDictionary(t => t.Path, _ => r, StringComparer.Ordinal);
        Tensor? mask = null;
        try
        {
            for (int i = 0; i < batches.Count; i++)
            {
                foreach (var (path, s) in sketches) s.Reading = !(s.Rows is not null && s.Converged.Take(ranks[path]).All(c => c));
                if (sketches.Values.All(s => !s.Reading)) break;
                mask?.Dispose();
                mask = batches.RealTokens(i);
                var m = mask;
                ProjectionProbe.Install(model, targets, path => sketches[path].Reading ? (x, y) => { Update(sketches[path], x, m); return y; } : null);
                try
                {
                    using (no_grad()) batches.Forward(i);
                }
                finally
                {
                    ProjectionProbe.Restore(model, targets);
                }
                ranks = Distribute(sketches.ToDictionary(kv => kv.Key, kv => Ratios(kv.Value), StringComparer.Ordinal), list.Select(t => t.Path).ToList(), r);
                request.Progress?.Invoke($"EVA: micro-batch {i + 1}, {sketches.Count(kv => kv.Value.Rows is not null && kv.Value.Converged.Take(ranks[kv.Key]).All(c => c))} of {sketches.Count} targets converged");
            }
            var result = new Dictionary<string, SvdInitFactors>(StringComparer.Ordinal);
            foreach (var (path, b) in list)
            {
                var s = sketches[path];
                if (s.Rows is null) throw new AdapterException($"'{path}': EVA saw no input tokens; the training data has no real tokens");
                using var scope = NewDisposeScope();
                int rank = ranks[path];
                // Vᵀ's rows: σᵢ·vᵢ normalised back to unit length.
                var a = nn.functional.normalize(s.Rows.narrow(0, 0, rank), dim: 1).to(b.Device).contiguous().DetachFromDisposeScope();
                var zero = zeros([b.OutFeatures, rank], ScalarType.Float32, b.Device).DetachFromDisposeScope();
                result[path] = new SvdInitFactors(TrainingMethod.Eva, a, zero, null);
            }
            return result;
        }
        finally
        {
            mask?.Dispose();
            foreach (var s in sketches.Values) s.Dispose();
        }
    }

    // One micro-batch's real-token inputs into the target's sketch.
    private static void Update(Sketch s, Tensor x, Tensor mask)
    {
        using var scope = NewDisposeScope();
        var rows = x.detach().reshape(-1, s.InFeatures).to(ScalarType.Float32);
        var m = mask.to(rows.device);
        if (m.shape[0] == rows.shape[0]) rows = rows.index(m);
        if (rows.shape[0] == 0) return;
        s.Energy += rows.mul(rows).sum().item<float>();
        var stacked = s.Rows is null ? rows : cat([s.Rows, rows], 0);
        var (_, sv, vh) = linalg.svd(stacked, fullMatrices: false);
        int k = (int)Math.Min(s.K, sv.shape[0]);
        var top = vh.narrow(0, 0, k);
        if (s.Previous is not null && s.Previous.shape[0] == k)
        {
            var cos = top.mul(s.Previous).sum(1).abs();   // both have unit rows
            var c = cos.data<float>().ToArray();
            for (int j = 0; j < k; j++) s.Converged[j] = c[j] >= Tau;
        }
        else Array.Fill(s.Converged, false);
        var newRows = sv.narrow(0, 0, k).unsqueeze(1).mul(top);
        s.Rows?.Dispose();
        s.Previous?.Dispose();
        s.Rows = newRows.contiguous().DetachFromDisposeScope();
        s.Previous = top.contiguous().DetachFromDisposeScope();
    }

    // σᵢ² / ‖X‖²_F for the components a sketch holds.
    private static double[] Ratios(Sketch s)
    {
        if (s.Rows is null || s.Energy <= 0) return [];
        using var norms = s.Rows.mul(s.Rows).sum(1);
        return norms.data<float>().ToArray().Select(v => v / s.Energy).ToArray();
    }

    /// <summary>
    /// EVA's rank budget r × targets spread by explained variance: each target keeps its first component; the rest of the
    /// budget goes to the largest remaining ratios over all targets (ties by model order, then component), each target
    /// capped at the components it holds. A target not yet holding any keeps r (it is still reading).
    /// </summary>
    /// <param name="ratios">Per target, its components' explained-variance ratios, largest first.</param>
    /// <param name="order">The targets in model order.</param>
    /// <param name="rank">r, the budget per target.</param>
    public static Dictionary<string, int> Distribute(IReadOnlyDictionary<string, double[]> ratios, IReadOnlyList<string> order, int rank)
    {
        if (order.Any(p => ratios[p].Length == 0)) return order.ToDictionary(p => p, _ => rank, StringComparer.Ordinal);
        var result = order.ToDictionary(p => p, _ => 1, StringComparer.Ordinal);
        int left = rank * order.Count - order.Count;
        var candidates = order.SelectMany((p, t) => ratios[p].Skip(1).Select((v, j) => (Path: p, Target: t, Index: j, Value: v)))
            .OrderByDescending(c => c.Value).ThenBy(c => c.Target).ThenBy(c => c.Index);
        foreach (var c in candidates)
        {
            if (left == 0) break;
            result[c.Path]++;
            left--;
        }
        return result;
    }
}
