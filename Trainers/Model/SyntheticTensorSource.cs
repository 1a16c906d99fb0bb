using System.Runtime.InteropServices;
using System.Text;
using QuantPeft.Quant.Codecs;
using QuantPeft.Formats.HuggingFace;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Model;

/// <summary>
/// A checkpoint that exists only as a rule: every tensor of a <see cref="ModelSpec"/> is generated on request
/// from a run seed and the tensor's name, so a model of any shape (a 7B or 70B preset) can be loaded, quantized
/// and trained without a file. Matrices have mean 0 and standard deviation <see cref="Std"/>, as Hugging Face
/// initialises llama (<c>initializer_range</c> 0.02), with an approximately normal shape (a scaled sum of four
/// uniforms, bounded at ±3.46σ: see <see cref="CounterNormal"/>); RMSNorm weights are 1 (0 for Gemma's (1 + w) norms) and biases 0, so
/// activations keep unit scale through the blocks and the loss starts near ln(vocab).
/// </summary>
/// <remarks>
/// Element <c>i</c> of a matrix is element <c>i</c> of the counter-based stream seeded by
/// <see cref="TensorSeed"/>(seed, name), so a tensor is the same whichever order the loader asks in, and any slice
/// of it can be generated alone. Generation is vectorised and spread over all cores, writing straight into the
/// tensor (hundreds of M values/s, against a few M/s for torch's sequential <c>randn</c>, which made a 7B load take
/// most of an hour); only the tensor being handed out is alive, in <see cref="DType"/> (bf16 by default, like a
/// real checkpoint's).
/// </remarks>
public sealed class SyntheticTensorSource : ISelectingTensorSource
{
    /// <summary>Standard deviation of generated matrices: Hugging Face's default <c>initializer_range</c>.</summary>
    public const double DefaultStd = 0.02;

    private readonly Dictionary<string, TensorSpec> _tensors;

    /// <summary>A source for every tensor of <paramref name="spec"/>.</summary>
    /// <param name="spec">The architecture; its <see cref="ModelSpec.Tensors()"/> are the names and shapes handed out.</param>
    /// <param name="seed">Run seed; the same seed and name always give the same tensor.</param>
    /// <param name="origin">How error messages name the model (e.g. <c>synthetic:llama-2-7b</c>).</param>
    /// <param name="dtype">Dtype of generated tensors.</param>
    /// <param name="std">Standard deviation of matrices (embedding, projections, LM head).</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="std"/> is not a positive finite number, or <paramref name="dtype"/> is not floating point.</exception>
    public SyntheticTensorSource(ModelSpec spec, ulong seed, string origin, ScalarType dtype = ScalarType.BFloat16, double std = DefaultStd)
    {
        ArgumentNullException.ThrowIfNull(spec);
        if (!(std > 0) || double.IsInfinity(std)) throw new ArgumentOutOfRangeException(nameof(std), std, "expected a positive finite standard deviation");
        if (dtype is not (ScalarType.BFloat16 or ScalarType.Float16 or ScalarType.Float32 or ScalarType.Float64)) throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "expected a floating-point dtype");
        Spec = spec;
        Seed = seed;
        Origin = origin;
        DType = dtype;
        Std = std;
        _tensors = spec.Tensors().ToDictionary(t => t.Name, StringComparer.Ordinal);
    }

    /// <summary>The architecture whose tensors this source generates.</summary>
    public ModelSpec Spec { get; }

    /// <summary>The run seed.</summary>
    public ulong Seed { get; }

    /// <summary>Dtype of generated tensors.</summary>
    public ScalarType DType { get; }

    /// <summary>Standard deviation of generated matrices.</summary>
    public double Std { get; }

    /// <inheritdoc />
    public string Origin { get; }

    /// <inheritdoc />
    public IEnumerable<string> Names => Spec.Tensors().Select(t => t.Name);

    /// <inheritdoc />
    /// <exception cref="ModelException">The spec has no tensor of that name.</exception>
    public Tensor Get(string name)
    {
        if (!_tensors.TryGetValue(name, out var spec))
            throw new ModelException($"{Origin}: no tensor '{name}' in a synthetic {Spec.ModelType} model of this shape");
        switch (spec.Role)
        {
            case TensorRole.Norm:
                return UnitNorm(spec.Shape);
            case TensorRole.Bias:
                return zeros(spec.Shape, DType);
            default:
                var value = empty(spec.Shape, DType);
                CounterNormal.Fill(value, TensorSeed(Seed, name), Std);
                return value;
        }
    }

    /// <inheritdoc />
    /// <remarks>
    /// Generates only the selected elements: kept rows as runs of the tensor's stream, kept columns element by element
    /// (element (r, c) of an [R, C] matrix is stream element r·C + c). Norms and biases are constants, cut by shape.
    /// </remarks>
    /// <exception cref="ModelException">The spec has no tensor of that name.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="dim"/> is not a dimension of the tensor, or an index is out of range.</exception>
    public bool TrySelect(string name, int dim, long[] indices, out Tensor? selected)
    {
        ArgumentNullException.ThrowIfNull(indices);
        if (!_tensors.TryGetValue(name, out var spec))
            throw new ModelException($"{Origin}: no tensor '{name}' in a synthetic {Spec.ModelType} model of this shape");
        long[] shape = [.. spec.Shape];
        if (dim < 0 || dim >= shape.Length) throw new ArgumentOutOfRangeException(nameof(dim), dim, $"'{name}' has {shape.Length} dimensions");
        foreach (long i in indices)
            if (i < 0 || i >= shape[dim]) throw new ArgumentOutOfRangeException(nameof(indices), i, $"'{name}' has {shape[dim]} entries along dimension {dim}");
        shape[dim] = indices.Length;
        selected = spec.Role switch
        {
            TensorRole.Norm => UnitNorm(shape),
            TensorRole.Bias => zeros(shape, DType),
            _ when shape.Length == 2 => SelectMatrix(spec.Shape[1], shape, dim, indices, TensorSeed(Seed, name)),
            _ => null,
        };
        return selected is not null;
    }

    // A norm that scales by 1: weight 1, or 0 for Gemma's norms, which scale by (1 + weight).
    private Tensor UnitNorm(long[] shape) => Spec.GemmaStyle ? zeros(shape, DType) : ones(shape, DType);

    // bf16 is written directly; other dtypes are generated in float32 and converted.
    private unsafe Tensor SelectMatrix(long fullColumns, long[] shape, int dim, long[] indices, ulong seed)
    {
        bool bf16 = DType == ScalarType.BFloat16;
        var result = empty(shape, bf16 ? ScalarType.BFloat16 : ScalarType.Float32);
        long rows = shape[0], cols = shape[1];
        int elementSize = bf16 ? 2 : 4;
        double std = Std;
        fixed (byte* pointer = result.bytes)
        {
            nint address = (nint)pointer;
            Parallel.For(0, rows, r =>
            {
                var row = new Span<byte>((byte*)address + r * cols * elementSize, (int)(cols * elementSize));
                if (dim == 0)
                {
                    long first = indices[r] * fullColumns;
                    if (bf16) CounterNormal.FillBFloat16(seed, first, std, MemoryMarshal.Cast<byte, ushort>(row));
                    else CounterNormal.Fill(seed, first, std, MemoryMarshal.Cast<byte, float>(row));
                    return;
                }
                long rowStart = r * fullColumns;
                if (bf16)
                {
                    var target = MemoryMarshal.Cast<byte, ushort>(row);
                    for (int j = 0; j < target.Length; j++) target[j] = FloatBits.SingleToBFloat16(CounterNormal.Value(seed, rowStart + indices[j], std));
                }
                else
                {
                    var target = MemoryMarshal.Cast<byte, float>(row);
                    for (int j = 0; j < target.Length; j++) target[j] = CounterNormal.Value(seed, rowStart + indices[j], std);
                }
            });
        }
        if (bf16 || DType == ScalarType.Float32) return result;
        using (result) return result.to(DType);
    }

    /// <summary>
    /// The stream seed of one tensor: FNV-1a over the UTF-8 name, mixed with the run seed through SplitMix64's
    /// finaliser so that neighbouring names and seeds land far apart. Stable across processes and platforms
    /// (unlike <see cref="string.GetHashCode()"/>).
    /// </summary>
    public static ulong TensorSeed(ulong seed, string name)
    {
        ulong hash = 0xCBF29CE484222325UL;
        foreach (byte b in Encoding.UTF8.GetBytes(name))
        {
            hash ^= b;
            hash *= 0x100000001B3UL;
        }
        ulong z = hash ^ (seed + 0x9E3779B97F4A7C15UL);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
