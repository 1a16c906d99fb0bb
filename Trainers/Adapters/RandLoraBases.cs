using TorchSharp;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Adapters;

/// <summary>
/// RandLoRA's frozen random bases, shared by every adapted layer and laid out as PEFT's RANDLORA keeps them: the one
/// A [r, 1, min] every base term shares and the n bases B [max, n, r], n = ⌈min / r⌉, where max and min are the larger
/// and the smaller of the widest target's d_out and d_in (PEFT's <c>_find_dim</c>). Each layer uses the leading slice that
/// fits it. Both come from one seeded generator, drawn and normalised as PEFT does, so the seed alone rebuilds them.
/// </summary>
public sealed class RandLoraBases : ISharedAdapterState
{
    /// <summary>The shared A's key in a PEFT adapter file (PEFT strips the adapter name from <c>base_model.randlora_A.default</c>).</summary>
    public const string AKey = "base_model.randlora_A";

    /// <summary>The shared B's key in a PEFT adapter file.</summary>
    public const string BKey = "base_model.randlora_B";

    /// <summary>
    /// Draws the bases from <paramref name="seed"/> as PEFT's non-sparse RandLoRA does: kaiming-uniform (a = √5) in f16
    /// from one CPU generator, A first, then B one base at a time; each divided by its own standard deviation.
    /// </summary>
    /// <param name="rank">r: the rank of each base term.</param>
    /// <param name="maxInFeatures">The widest target's d_in.</param>
    /// <param name="maxOutFeatures">The widest target's d_out.</param>
    /// <param name="seed">PEFT's <c>projection_prng_key</c>.</param>
    /// <param name="dtype">Dtype the bases are kept in (the f16 draws convert exactly to f32).</param>
    /// <param name="device">Device of the bases; drawn on the CPU.</param>
    public RandLoraBases(int rank, long maxInFeatures, long maxOutFeatures, long seed, ScalarType dtype = ScalarType.Float32, Device? device = null)
    {
        if (rank <= 0) throw new AdapterException($"RandLoRA rank must be positive, got {rank}");
        Rank = rank;
        Seed = seed;
        MinDim = Math.Min(maxInFeatures, maxOutFeatures);
        MaxDim = Math.Max(maxInFeatures, maxOutFeatures);
        Bases = BaseCount(MinDim, rank);
        using var scope = torch.NewDisposeScope();
        using var gen = new Generator((ulong)seed);
        var a = KaimingUniformHalf([rank, 1, MinDim], gen);
        var bs = new Tensor[Bases];
        for (int i = 0; i < Bases; i++) bs[i] = KaimingUniformHalf([MaxDim, 1, rank], gen);
        var b = torch.cat(bs, 1);
        A = a.div(a.std()).to(dtype, device ?? CPU, copy: true).MoveToOuterDisposeScope();
        B = b.div(b.std()).to(dtype, device ?? CPU, copy: true).MoveToOuterDisposeScope();
    }

    /// <summary>r.</summary>
    public int Rank { get; }

    /// <summary>The seed the bases came from.</summary>
    public long Seed { get; }

    /// <summary>min of the widest target's d_in and d_out: A's width.</summary>
    public long MinDim { get; }

    /// <summary>max of the widest target's d_in and d_out: B's height.</summary>
    public long MaxDim { get; }

    /// <summary>n = ⌈<see cref="MinDim"/> / r⌉: the number of bases B holds.</summary>
    public int Bases { get; }

    /// <summary>A [r, 1, min] (frozen).</summary>
    public Tensor A { get; }

    /// <summary>B [max, n, r] (frozen).</summary>
    public Tensor B { get; }

    /// <inheritdoc />
    public IReadOnlyDictionary<string, Tensor> Tensors => new Dictionary<string, Tensor> { [AKey] = A, [BKey] = B };

    /// <summary>⌈<paramref name="minDim"/> / r⌉: the bases whose sum of rank-r terms reaches rank min(d_in, d_out).</summary>
    public static int BaseCount(long minDim, int rank) => checked((int)((minDim + rank - 1) / rank));

    // torch.nn.init.kaiming_uniform_(t, a=√5, generator=g) on an f16 tensor: U(−bound, bound), bound = √3 · gain / √fan_in,
    // gain = √(2 / (1 + a²)), fan_in = shape[1] · Π shape[2:]. The same arithmetic in double gives the same bound.
    private static Tensor KaimingUniformHalf(long[] shape, Generator gen)
    {
        double a = Math.Sqrt(5);
        double gain = Math.Sqrt(2.0 / (1 + a * a));
        long fanIn = shape[1] * shape[2];
        double bound = Math.Sqrt(3.0) * (gain / Math.Sqrt(fanIn));
        return torch.empty(shape, dtype: ScalarType.Float16).uniform_(-bound, bound, gen);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        A.Dispose();
        B.Dispose();
    }
}
