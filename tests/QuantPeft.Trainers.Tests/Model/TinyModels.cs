using QuantPeft.Formats.HuggingFace;
using QuantPeft.Trainers.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Tests.Model;

/// <summary>Tiny architectures and deterministic random checkpoints for them.</summary>
internal static class TinyModels
{
    public static ModelSpec Llama(bool tied = false, bool bias = false, RopeScaling? scaling = null, int maxPositions = 64) => new()
    {
        ModelType = bias ? "qwen2" : "llama",
        NumLayers = 2,
        HiddenSize = 16,
        IntermediateSize = 24,
        NumHeads = 4,
        NumKvHeads = 2,
        VocabSize = 32,
        TieWordEmbeddings = tied,
        AttentionBias = bias,
        RopeTheta = 10000,
        RopeScaling = scaling,
        RmsNormEps = 1e-6,
        MaxPositionEmbeddings = maxPositions,
    };

    /// <summary>A checkpoint with every tensor of <paramref name="spec"/>, values drawn from a seeded System.Random.</summary>
    public static DictionarySource RandomCheckpoint(ModelSpec spec, int seed)
    {
        var rng = new Random(seed);
        var source = new DictionarySource("random-checkpoint");
        foreach (var t in spec.Tensors())
        {
            var data = new float[t.ElementCount];
            for (int i = 0; i < data.Length; i++)
            {
                double u = rng.NextDouble() * 2 - 1;
                data[i] = (float)(t.Role switch
                {
                    TensorRole.Norm => 1 + 0.2 * u,
                    TensorRole.Bias => 0.1 * u,
                    TensorRole.Embedding => u,
                    _ => 0.4 * u,
                });
            }
            source.Add(t.Name, t.Shape, data);
        }
        return source;
    }

    public static CausalLm Build(ModelSpec spec, DictionarySource checkpoint, ScalarType dtype = ScalarType.Float32,
        AttentionImplementation attention = AttentionImplementation.Fused)
    {
        var model = new CausalLm(spec, new DecoderOptions { ComputeDType = dtype, Attention = attention });
        model.LoadWeights(checkpoint);
        return model;
    }

    public static Tensor Ids(long[,] ids) =>
        tensor(ids.Cast<long>().ToArray(), [ids.GetLength(0), ids.GetLength(1)], dtype: ScalarType.Int64);
}

/// <summary>An in-memory <see cref="ITensorSource"/> whose name order can be chosen.</summary>
internal sealed class DictionarySource : ITensorSource
{
    private readonly Dictionary<string, (long[] Shape, float[] Data)> _tensors = new();
    private readonly List<string> _order = new();

    public DictionarySource(string origin) => Origin = origin;

    public string Origin { get; }

    public IEnumerable<string> Names => _order;

    public List<string> Gets { get; } = new();

    public void Add(string name, long[] shape, float[] data)
    {
        _tensors[name] = (shape, data);
        _order.Add(name);
    }

    public float[] Data(string name) => _tensors[name].Data;

    public DictionarySource Reordered(Func<IEnumerable<string>, IEnumerable<string>> order, string? drop = null)
    {
        var copy = new DictionarySource(Origin);
        foreach (var name in order(_order).Where(n => n != drop))
            copy.Add(name, _tensors[name].Shape, _tensors[name].Data);
        return copy;
    }

    public Tensor Get(string name)
    {
        Gets.Add(name);
        var (shape, data) = _tensors[name];
        return tensor(data, shape, dtype: ScalarType.Float32);
    }
}
