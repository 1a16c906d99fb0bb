using QuantPeft.Optimizers.State;
using static TorchSharp.torch;

namespace QuantPeft.Optimizers.GaLore;

/// <summary>
/// Natural GaLore's preconditioner: the inverse damped empirical Fisher of the last s projected gradients,
/// applied through the Woodbury identity so only an s×s system is solved.
/// </summary>
/// <remarks>
/// With the history stacked as columns G_h ∈ R^{k×s'} (s' ≤ s, the current gradient included):
/// F = λI + G_h G_hᵀ and F⁻¹g = g/λ − G_h (I + G_hᵀG_h/λ)⁻¹ G_hᵀ g / λ². The s'×s' matrix is solved by
/// Cholesky. The history is a ring buffer that is not cleared when the GaLore subspace changes
/// (the reference code keeps it). On the first step this is g/(λ + ‖g‖²).
/// </remarks>
public sealed class NaturalGradientTransform
{
    private readonly IStateTensor _history; // (s, k): row j holds one past projected gradient
    private readonly int _capacity;
    private readonly double _damping;

    /// <summary>Allocates the history for projected gradients of <paramref name="length"/> elements.</summary>
    public NaturalGradientTransform(NaturalGaLoreOptions options, long length, Device device, IStateAllocator allocator)
    {
        _capacity = options.History;
        _damping = options.Damping;
        _history = allocator.Allocate("natural.history", [_capacity, length], ScalarType.Float32, device);
    }

    /// <summary>The history tensor.</summary>
    public IStateTensor History => _history;

    /// <summary>
    /// Records <paramref name="g"/> (flat f32, the projected gradient of update number <paramref name="t"/>,
    /// counted from 1) and returns F⁻¹g over the last min(t, s) gradients.
    /// </summary>
    public Tensor Apply(Tensor g, long t)
    {
        using var scope = NewDisposeScope();
        var hist = _history.Value;
        hist[(t - 1) % _capacity].copy_(g);
        long used = Math.Min(t, _capacity);
        return WoodburyInverseFisher(hist.narrow(0, 0, used), g, _damping).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// F⁻¹g for F = λI + Hᵀ H, where the rows of <paramref name="rows"/> (s'×k) are the history vectors.
    /// Public so it can be held against an explicit inverse.
    /// </summary>
    public static Tensor WoodburyInverseFisher(Tensor rows, Tensor g, double damping)
    {
        using var scope = NewDisposeScope();
        var h = rows.to(ScalarType.Float32);
        var gf = g.to(ScalarType.Float32).reshape(-1);
        long s = h.shape[0];
        var small = eye(s, dtype: ScalarType.Float32, device: h.device).add_(h.matmul(h.t()), alpha: 1 / damping); // (s', s')
        var chol = linalg.cholesky(small);
        var rhs = h.matmul(gf).unsqueeze(1);                      // G_hᵀ g  (s', 1)
        var z = cholesky_solve(rhs, chol);                        // S⁻¹ G_hᵀ g
        var correction = h.t().matmul(z).squeeze(1);             // G_h z  (k)
        var result = gf.div(damping).add_(correction, alpha: -1 / (damping * damping));
        return result.MoveToOuterDisposeScope();
    }
}
