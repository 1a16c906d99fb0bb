using QuantPeft.Optimizers.State;
using static TorchSharp.torch;

namespace QuantPeft.Optimizers.GaLore;

/// <summary>
/// The GaLore projector of one m×n weight: the top-r singular vectors of a recent gradient, on the side(s)
/// the projection type picks. Its factors are optimizer state (they are paged and saved with the moments).
/// </summary>
/// <remarks>
/// Side rule (galore-torch <c>GaLoreProjector</c>): <c>std</c> projects on the right when m ≥ n
/// (Q = Vh[:r,:], R = G Qᵀ, back N Q) and on the left otherwise (P = U[:,:r], R = Pᵀ G, back P N);
/// <c>reverse_std</c> swaps that choice; <c>left</c>/<c>right</c> fix it; <c>full</c> uses both
/// (R = Pᵀ G Qᵀ, back P N Q). The SVD runs in f32 (<c>full_matrices=False</c>); the factors are stored in the
/// parameter's dtype, as galore-torch casts them back to the gradient dtype.
/// </remarks>
public sealed class GaLoreProjector
{
    private readonly IStateTensor? _left;   // P: (m, r), orthonormal columns
    private readonly IStateTensor? _right;  // Q: (r, n), orthonormal rows

    /// <summary>Allocates the factors for an <paramref name="rows"/>×<paramref name="cols"/> weight.</summary>
    public GaLoreProjector(GaLoreProjectionType type, int rank, long rows, long cols, ScalarType dtype, Device device, IStateAllocator allocator)
    {
        Rank = rank;
        bool rightSide = type switch
        {
            GaLoreProjectionType.Std => rows >= cols,
            GaLoreProjectionType.ReverseStd => rows < cols,
            GaLoreProjectionType.Right => true,
            _ => false,
        };
        bool full = type == GaLoreProjectionType.Full;
        if (full || !rightSide) _left = allocator.Allocate("galore.left", [rows, rank], dtype, device);
        if (full || rightSide) _right = allocator.Allocate("galore.right", [rank, cols], dtype, device);
        ProjectedShape = full ? [rank, rank] : rightSide ? [rows, rank] : [rank, cols];
        Tensors = new[] { _left, _right }.OfType<IStateTensor>().ToArray();
    }

    /// <summary>r.</summary>
    public int Rank { get; }

    /// <summary>The shape of R (and of the Adam moments).</summary>
    public long[] ProjectedShape { get; }

    /// <summary>The factor tensors (one or two).</summary>
    public IReadOnlyList<IStateTensor> Tensors { get; }

    /// <summary>P (m×r) when the projection has a left side, else null.</summary>
    public Tensor? Left => _left?.Value;

    /// <summary>Q (r×n) when the projection has a right side, else null.</summary>
    public Tensor? Right => _right?.Value;

    /// <summary>Recomputes the factors from the SVD of <paramref name="gradient"/> (any float dtype).</summary>
    public void Refresh(Tensor gradient)
    {
        using var scope = NewDisposeScope();
        var (u, _, vh) = linalg.svd(gradient.to(ScalarType.Float32), fullMatrices: false);
        _left?.Value.copy_(u.narrow(1, 0, Rank));
        _right?.Value.copy_(vh.narrow(0, 0, Rank));
    }

    /// <summary>R = the projected gradient, as a new f32 tensor of <see cref="ProjectedShape"/>.</summary>
    public Tensor Project(Tensor gradient)
    {
        using var scope = NewDisposeScope();
        var g = gradient.to(ScalarType.Float32);
        if (_left is not null) g = _left.Value.to(ScalarType.Float32).t().matmul(g);
        if (_right is not null) g = g.matmul(_right.Value.to(ScalarType.Float32).t());
        return g.MoveToOuterDisposeScope();
    }

    /// <summary>The back-projection of a low-rank <paramref name="update"/> to the full shape (f32, without α).</summary>
    public Tensor ProjectBack(Tensor update)
    {
        using var scope = NewDisposeScope();
        var n = update.to(ScalarType.Float32);
        if (_left is not null) n = _left.Value.to(ScalarType.Float32).matmul(n);
        if (_right is not null) n = n.matmul(_right.Value.to(ScalarType.Float32));
        return n.MoveToOuterDisposeScope();
    }
}
