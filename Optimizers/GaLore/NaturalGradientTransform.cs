using QuantPeft.Optimizers.State;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantPeft.Optimizers.GaLore;

/// <summary>
/// Natural GaLore's preconditioner: the inverse damped empirical Fisher of the last s projected gradients,
/// applied through the Woodbury identity so only an s×s system is solved (in f64, see below).
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
    /// Public so it can be held against an explicit inverse. Returns f32.
    /// </summary>
    /// <remarks>
    /// Computed as (g − G_h (λI + G_hᵀG_h)⁻¹ G_hᵀ g)/λ, which is the Woodbury form above multiplied through
    /// by λ inside the solve. Done in f64: when g lies in the span of the history the bracket is a
    /// cancellation of size λ/(λ + ‖g‖²), and with λ = 1e-3 and ‖g‖² in the thousands f32 would lose every
    /// digit (and its Cholesky of I + G_hᵀG_h/λ fails outright for repeated gradients).
    /// </remarks>
    public static Tensor WoodburyInverseFisher(Tensor rows, Tensor g, double damping)
    {
        using var scope = NewDisposeScope();
        var h = rows.to(ScalarType.Float64);
        var gd = g.to(ScalarType.Float64).reshape(-1);
        long s = h.shape[0];
        using Scalar lambda = damping.ToScalar(); // explicit: an implicit Scalar can be finalized mid-call (AdamMath)
        var small = h.matmul(h.t()).add_(eye(s, dtype: ScalarType.Float64, device: h.device), alpha: lambda); // λI + G_hᵀG_h  (s', s')
        var chol = linalg.cholesky(small);
        var z = cholesky_solve(h.matmul(gd).unsqueeze(1), chol);  // (λI + G_hᵀG_h)⁻¹ G_hᵀ g  (s', 1)
        var result = gd.sub(h.t().matmul(z).squeeze(1)).div_(lambda);
        return result.to(ScalarType.Float32).MoveToOuterDisposeScope();
    }
}
