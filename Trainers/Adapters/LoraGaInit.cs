using QuantPeft.Memory.Planning;
using QuantPeft.Quant.Torch;
using QuantPeft.Trainers.Adapters.Methods;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Adapters;

/// <summary>
/// LoRA-GA's initialisation (Wang et al. 2024, "LoRA-GA: Low-Rank Adaptation with Gradient Approximation"): G, the
/// gradient of the loss with respect to each target's weight over the run's first micro-batches (their mean, as one
/// batch), is decomposed G = U S Vᵀ, and the adapter starts at A₀ = c·V[:, 1..r]ᵀ, B₀ = c·U[:, r+1..2r] (the paper's
/// and PEFT's default "ArB2r" split) with the paper's stable scale c = d_out^¼ / √γ, γ = 16. The model must start
/// unchanged, so the layer subtracts s·B₀A₀ (<see cref="LoraGaLinear"/>). One SGD step of rate η then changes the
/// merged weight by −η s² c² (G V_r V_rᵀ + U_{r+1..2r} U_{r+1..2r}ᵀ G) + O(η²) = −η s² c² · (G's best rank-2r
/// approximation): the direction full fine-tuning's first step would take, projected on G's top 2r singular pairs.
/// </summary>
/// <remarks>
/// G is the gradient with respect to the weight the forward uses, the dequantized one on a 4-bit base: each probed
/// projection adds x·Zᵀ with a zero f32 matrix Z that requires grad, so Z.grad = Σ dyᵀ·x = ∂L/∂W, and the output
/// is unchanged. Only the targets of one group at a time carry a Z: a group holds at most <see cref="GroupBytes"/> of
/// Z and its gradient (8 bytes per weight element), and the batches are read again for each group, so the init never
/// holds more than that bound of dense gradients (plus one training step's activations) whatever the model's size.
/// </remarks>
public static class LoraGaInit
{
    /// <summary>γ of the stable scale c = d_out^¼ / √γ (the paper's and PEFT's default).</summary>
    public const double StableGamma = 16;

    /// <summary>The micro-batches whose mean gradient is decomposed.</summary>
    public const int Batches = 8;

    /// <summary>Bytes of probe matrices and their gradients (8 per weight element) one group of targets may hold.</summary>
    public const long GroupBytes = 1L << 30;

    /// <summary>The data-driven init of <see cref="TrainingMethod.LoraGa"/>.</summary>
    public static IReadOnlyDictionary<string, SvdInitFactors> Compute(DataInitRequest request)
    {
        var (model, targets, options, batches) = (request.Model, request.Targets, request.Options, request.Batches);
        int r = options.Rank;
        var list = ProjectionProbe.Targets(model, targets).ToList();
        foreach (var (path, b) in list)
            if (2 * r > Math.Min(b.InFeatures, b.OutFeatures))
                throw new AdapterException($"'{path}': LoRA-GA takes 2r = {2 * r} singular pairs, more than min(in, out) = {Math.Min(b.InFeatures, b.OutFeatures)}");
        int count = Math.Min(Batches, batches.Count);
        if (count == 0) throw new AdapterException("LoRA-GA needs at least one training micro-batch");
        var result = new Dictionary<string, SvdInitFactors>(StringComparer.Ordinal);
        var frozen = model.parameters().Where(p => p.requires_grad).ToList();
        foreach (var p in frozen) p.requires_grad = false;
        try
        {
            foreach (var group in Groups(list))
            {
                var probes = group.ToDictionary(t => t.Path, t => zeros([t.Base.OutFeatures, t.Base.InFeatures], ScalarType.Float32, t.Base.Device).requires_grad_(true), StringComparer.Ordinal);
                try
                {
                    ProjectionProbe.Install(model, targets, path => probes.TryGetValue(path, out var z) ? (x, y) => y.Add(nn.functional.linear(x.to(ScalarType.Float32), z).to(y.dtype)) : null);
                    try
                    {
                        for (int i = 0; i < count; i++)
                        {
                            using var scope = NewDisposeScope();
                            batches.Loss(i, count).backward();
                            request.Progress?.Invoke($"LoRA-GA: gradient of micro-batch {i + 1} of {count} ({result.Count + group.Count} of {list.Count} targets)");
                        }
                    }
                    finally
                    {
                        ProjectionProbe.Restore(model, targets);
                    }
                    foreach (var (path, b) in group)
                        result[path] = Factors(probes[path].grad ?? throw new AdapterException($"'{path}': no gradient reached the projection"), r);
                }
                finally
                {
                    foreach (var z in probes.Values) z.Dispose();
                }
            }
            return result;
        }
        catch
        {
            foreach (var f in result.Values) f.Dispose();
            throw;
        }
        finally
        {
            foreach (var p in frozen) p.requires_grad = true;
        }
    }

    /// <summary>
    /// A₀ = c·V[:, 1..r]ᵀ [r, in] and B₀ = c·U[:, r+1..2r] [out, r] of the gradient <paramref name="g"/> [out, in],
    /// c = out^¼ / √γ. The sign of G does not matter: s·B₀A₀ is subtracted again, and the first step's change is built
    /// from both signs' projections alike.
    /// </summary>
    public static SvdInitFactors Factors(Tensor g, int rank)
    {
        using var scope = NewDisposeScope();
        var (u, _, vh) = linalg.svd(g.detach().to(ScalarType.Float32), fullMatrices: false);
        double c = Math.Pow(g.shape[0], 0.25) / Math.Sqrt(StableGamma);
        var a = vh.narrow(0, 0, rank).Mul(c).contiguous();
        var b = u.narrow(1, rank, rank).Mul(c).contiguous();
        return new SvdInitFactors(TrainingMethod.LoraGa, a.DetachFromDisposeScope(), b.DetachFromDisposeScope(), null);
    }

    // Consecutive targets whose probes and gradients fit GroupBytes together (a larger target alone).
    private static IEnumerable<List<(string Path, IBaseLinear Base)>> Groups(List<(string Path, IBaseLinear Base)> list)
    {
        var group = new List<(string Path, IBaseLinear Base)>();
        long bytes = 0;
        foreach (var t in list)
        {
            long need = 8 * t.Base.InFeatures * t.Base.OutFeatures;
            if (group.Count > 0 && bytes + need > GroupBytes)
            {
                yield return group;
                group = [];
                bytes = 0;
            }
            group.Add(t);
            bytes += need;
        }
        if (group.Count > 0) yield return group;
    }
}
