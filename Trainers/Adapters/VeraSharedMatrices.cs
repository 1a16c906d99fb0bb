using TorchSharp;
using TorchSharp.Utils;
using static TorchSharp.torch;
using QuantPeft.Quant.Torch;

namespace QuantPeft.Trainers.Adapters;

/// <summary>
/// VeRA's frozen random projections, shared by every adapted layer: A [r, maxIn] and B [maxOut, r], each
/// layer using the leading slice that fits it. Seeded, so the same seed rebuilds the same matrices and an
/// adapter file need only store the per-layer vectors (PEFT can also store them: <c>save_projection</c>).
/// </summary>
public sealed class VeraSharedMatrices : ISharedAdapterState
{
    /// <summary>Creates kaiming-uniform A and B from <paramref name="seed"/>, with PEFT's VeRA bound √(6 / fan_in).</summary>
    public VeraSharedMatrices(int rank, long maxInFeatures, long maxOutFeatures, long seed, ScalarType dtype = ScalarType.Float32, Device? device = null)
    {
        if (rank <= 0) throw new AdapterException($"VeRA rank must be positive, got {rank}");
        Rank = rank;
        Seed = seed;
        using var gen = new Generator((ulong)seed);
        using var a = KaimingUniform(rank, maxInFeatures, gen);
        using var b = KaimingUniform(maxOutFeatures, rank, gen);
        A = a.to(dtype, device ?? CPU, copy: true);
        B = b.to(dtype, device ?? CPU, copy: true);
    }

    /// <summary>Shared rank r.</summary>
    public int Rank { get; }

    /// <summary>The seed the matrices came from.</summary>
    public long Seed { get; }

    /// <summary>A [r, maxIn] (frozen).</summary>
    public Tensor A { get; }

    /// <summary>B [maxOut, r] (frozen).</summary>
    public Tensor B { get; }

    /// <inheritdoc />
    /// <remarks>PEFT strips the adapter name from <c>base_model.vera_A.default</c>.</remarks>
    public IReadOnlyDictionary<string, Tensor> Tensors => new Dictionary<string, Tensor> { ["base_model.vera_A"] = A, ["base_model.vera_B"] = B };

    // PEFT's VeRA draws both projections with gain √2 (kaiming for ReLU, a = 0): U(−√(6/fan_in), √(6/fan_in)),
    // fan_in being the number of columns. The scale matters: λ_b, λ_d are learned around it.
    private static Tensor KaimingUniform(long rows, long cols, Generator gen)
    {
        double bound = Math.Sqrt(6.0 / cols);
        using var u = torch.rand(rows, cols, generator: gen, dtype: ScalarType.Float32);
        return u.Mul(2 * bound).SubInPlace(bound);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        A.Dispose();
        B.Dispose();
    }
}
