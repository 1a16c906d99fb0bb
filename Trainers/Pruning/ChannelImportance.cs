using QuantPeft.Formats.HuggingFace;
using QuantPeft.Trainers.Model;
using TorchSharp;
using static TorchSharp.torch;
using QuantPeft.Quant.Torch;

namespace QuantPeft.Trainers.Pruning;

/// <summary>
/// Structured magnitude scores of one block, read from the checkpoint one tensor at a time (each is reduced to row or
/// column sums of squares and dropped before the next is read): a key/value head's score sums the squares of its k and
/// v rows, of the q rows of its query heads and of the o columns of those heads; an MLP channel's sums its gate and up
/// rows and its down column. Biases are left out, as LLM-Pruner's magnitude importance leaves them out.
/// </summary>
internal static class ChannelImportance
{
    /// <summary>One score per key/value head of block <paramref name="layer"/>.</summary>
    public static double[] KvHeads(ModelSpec spec, int layer, ITensorSource source)
    {
        string p = $"model.layers.{layer}.self_attn.";
        long kv = spec.NumKvHeads;
        var total = new double[kv];
        if (spec.FusedProjections)
        {
            // Phi-3's qkv_proj: its q, k and v row runs each fold into the kv heads.
            long q = (long)spec.NumHeads * spec.HeadDim, k = kv * spec.HeadDim;
            Add(total, spec, source, p + "qkv_proj.weight", dim: 1, kv, [(0, q), (q, k), (q + k, k)]);
        }
        else
        {
            Add(total, spec, source, p + "q_proj.weight", dim: 1, kv);
            Add(total, spec, source, p + "k_proj.weight", dim: 1, kv);
            Add(total, spec, source, p + "v_proj.weight", dim: 1, kv);
        }
        Add(total, spec, source, p + "o_proj.weight", dim: 0, kv);
        return total;
    }

    /// <summary>One score per MLP channel of block <paramref name="layer"/>.</summary>
    public static double[] Channels(ModelSpec spec, int layer, ITensorSource source)
    {
        string p = $"model.layers.{layer}.mlp.";
        var total = new double[spec.IntermediateSize];
        long i = spec.IntermediateSize;
        if (spec.FusedProjections)
        {
            Add(total, spec, source, p + "gate_up_proj.weight", dim: 1, i, [(0, i), (i, i)]);   // gate rows, then up rows
        }
        else
        {
            Add(total, spec, source, p + "gate_proj.weight", dim: 1, i);
            Add(total, spec, source, p + "up_proj.weight", dim: 1, i);
        }
        Add(total, spec, source, p + "down_proj.weight", dim: 0, spec.IntermediateSize);
        return total;
    }

    /// <summary>The checkpoint tensor <paramref name="name"/> at its unpruned shape.</summary>
    /// <exception cref="ModelException">The tensor's shape is not the spec's.</exception>
    public static Tensor FetchFull(ModelSpec spec, ITensorSource source, string name)
    {
        var expected = spec.Tensors().FirstOrDefault(t => t.Name == name)?.Shape
            ?? throw new ModelException($"{source.Origin}: tensor '{name}' is not part of the {spec.ModelType} spec");
        var value = source.Get(name);
        if (!value.shape.SequenceEqual(expected))
        {
            string found = "[" + string.Join(", ", value.shape) + "]";
            value.Dispose();
            throw new ModelException($"{source.Origin}: tensor '{name}': expected shape [{string.Join(", ", expected)}] before pruning, found {found}");
        }
        return value;
    }

    // Sums squares over `dim` (1: per row, 0: per column), then folds the rows/columns into `units` equal runs
    // (heads of head_dim or of a whole query group; single channels) and adds each run's total.
    // A fused weight gives its row runs (start, length) separately, each folded the same way.
    private static void Add(double[] total, ModelSpec spec, ITensorSource source, string name, int dim, long units,
        (long Start, long Length)[]? runs = null)
    {
        using var scope = NewDisposeScope();
        using var w = FetchFull(spec, source, name);
        var all = w.to_type(ScalarType.Float32).SquareInPlace().sum(dim, type: ScalarType.Float64);
        foreach (var (start, length) in runs ?? [(0, all.shape[0])])
        {
            var values = all.narrow(0, start, length).view(units, -1).sum(1).cpu().data<double>().ToArray();
            for (int i = 0; i < total.Length; i++) total[i] += values[i];
        }
    }
}
