using QuantPeft.Quant;
using QuantPeft.Quant.LqLora;
using QuantPeft.Trainers.Model;
using TorchSharp;
using static TorchSharp.torch;
using QuantPeft.Quant.Torch;

namespace QuantPeft.Trainers.Adapters;

/// <summary>
/// LQ-LoRA's mixed-precision base (the LQ-LoRA paper): one pass over the checkpoint scores NF2, NF3 and NF4 for
/// every decoder projection, the <see cref="BitAllocator"/> picks one per matrix under the average bit budget,
/// and <see cref="Factory"/> builds the bases that the second (loading) pass fills: targets through the
/// decomposition W ≈ Q + L1·L2 (L1·L2 becomes the LoRA's start), the other projections as plain NF-k of W.
/// </summary>
/// <remarks>
/// Deviations from the reference, on purpose: the candidate set is NF2/NF3/NF4 with 8-bit first-level scale codes,
/// f32 second-level scales, B0 = 64 and the largest B1 of 256, 16 that divides the matrix (the reference searches
/// 432 configurations with an ILP), and the decomposition runs at most <see cref="MaxIterations"/> rounds (the
/// reference allows 100, and usually stops after a few when the error rises). Costs are unweighted (no Fisher).
/// </remarks>
public static class LqLoraPlan
{
    /// <summary>Rounds of the decomposition, for scoring and for loading alike.</summary>
    public const int MaxIterations = 20;

    /// <summary>Seed of the randomized SVD sketches (the same in both passes, so the loaded Q is the scored one).</summary>
    public const ulong SvdSeed = 0;

    /// <summary>The NF-k candidates for a matrix of <paramref name="numel"/> elements (B1 = 256 when it fits, else 16).</summary>
    /// <exception cref="QuantInputException">No candidate group size divides the matrix.</exception>
    public static IReadOnlyList<LqQuantConfig> Candidates(long numel, string name)
    {
        foreach (int b1 in new[] { 256, 16 })
            if (numel % (64L * b1) == 0)
                return [.. new[] { 2, 3, 4 }.Select(b => new LqQuantConfig(b, 8, SecondLevelStorage.Float32, 64, b1))];
        throw new QuantInputException($"'{name}': {numel} elements are not a multiple of 64·16 = 1024, the smallest LQ-LoRA group");
    }

    /// <summary>
    /// Scores every projection tensor of <paramref name="source"/> (<c>model.layers.N.….X_proj.weight</c>) and assigns
    /// the configurations; returns the configuration per module path (e.g. <c>model.layers.0.mlp.up_proj</c>).
    /// </summary>
    /// <param name="source">The checkpoint; tensors are read one at a time.</param>
    /// <param name="targets">Projections that get an adapter (scored with the decomposition, rank <paramref name="rank"/>).</param>
    /// <param name="rank">LoRA rank r.</param>
    /// <param name="budgetBits">Average bits per projection weight (the LoRA factors are not counted, as in the paper).</param>
    /// <exception cref="QuantInputException">The budget is below what NF2 needs, or a matrix has no candidate.</exception>
    public static IReadOnlyDictionary<string, LqQuantConfig> Allocate(ITensorSource source, IReadOnlyList<string> targets, int rank, double budgetBits)
    {
        var modules = new List<string>();
        var matrices = new List<MatrixCandidates>();
        foreach (var name in source.Names.Where(IsProjectionWeight).OrderBy(n => n, StringComparer.Ordinal))
        {
            string module = name[..^".weight".Length];
            bool target = targets.Contains(module[(module.LastIndexOf('.') + 1)..]);
            using var w = source.Get(name);
            using var f32 = w.to(ScalarType.Float32);
            var scored = Candidates(f32.numel(), name).Select(c => (c, Cost(f32, c, target ? rank : 0, name))).ToList();
            modules.Add(module);
            matrices.Add(new MatrixCandidates(module, f32.numel(), scored));
        }
        if (matrices.Count == 0) throw new QuantInputException($"{source.Origin}: no decoder projection weights to quantize");
        var allocation = BitAllocator.Allocate(matrices, budgetBits);
        return modules.Zip(allocation.Choices).ToDictionary(p => p.First, p => p.Second, StringComparer.Ordinal);
    }

    /// <summary>The linear factory: every projection gets an <see cref="LqLoraBaseLinear"/> in its configuration; targets get the decomposition hook in front.</summary>
    /// <exception cref="AdapterException">A projection has no configuration (it was not in the scored checkpoint).</exception>
    public static LinearFactory Factory(IReadOnlyDictionary<string, LqQuantConfig> configs, IReadOnlyList<string> targets, int rank, double scaling,
        ScalarType computeDType, Device? device = null) =>
        (hfName, inFeatures, outFeatures, bias) =>
        {
            if (!configs.TryGetValue(hfName, out var config))
                throw new AdapterException($"'{hfName}': no LQ-LoRA configuration was allocated for this projection");
            var baseLinear = new LqLoraBaseLinear(inFeatures, outFeatures, config, computeDType, device);
            string shortName = hfName[(hfName.LastIndexOf('.') + 1)..];
            return targets.Contains(shortName) ? SvdInitLinear.LqLora(baseLinear, rank, scaling, config) : baseLinear;
        };

    // ‖W − (Q + L1·L2)‖²_F for a target, ‖W − Q(W)‖²_F otherwise.
    private static double Cost(Tensor w, LqQuantConfig config, int rank, string name)
    {
        if (rank > 0)
        {
            using var result = LqDecomposition.Decompose(w, config, rank, MaxIterations, seed: SvdSeed, name: name);
            return result.Error * result.Error;
        }
        using var q = LqQuantizer.FakeQuantize(w, config, name);
        using var d = w.sub(q);
        using var sq = d.to(ScalarType.Float64).Square().sum();
        return sq.item<double>();
    }

    private static bool IsProjectionWeight(string name) =>
        name.StartsWith("model.layers.", StringComparison.Ordinal) && name.EndsWith("_proj.weight", StringComparison.Ordinal)
        && ModelAdapters.IsProjection(name[(name.LastIndexOf('.', name.Length - ".weight".Length - 1) + 1)..^".weight".Length]);
}
