using QuantPeft.Formats.HuggingFace;
using QuantPeft.Memory.Planning;

namespace QuantPeft.Memory.CostModel;

/// <summary>One linear projection weight of a decoder layer (nn.Linear layout: Out × In).</summary>
/// <param name="Layer">Decoder layer index.</param>
/// <param name="Module">Which projection.</param>
/// <param name="Out">Output features (rows).</param>
/// <param name="In">Input features (columns).</param>
/// <param name="BiasElements">Elements of its bias (0 without one).</param>
public readonly record struct LinearTensor(int Layer, LinearModule Module, long Out, long In, long BiasElements)
{
    /// <summary>Weight elements.</summary>
    public long Elements => Out * In;
}

/// <summary>The dimensions of one decoder layer after any pruning, as the activation formulas need them.</summary>
/// <param name="QDim">Query width: kept query heads × head_dim.</param>
/// <param name="KvDim">Key/value width: kept KV heads × head_dim.</param>
/// <param name="Heads">Kept query heads.</param>
/// <param name="Intermediate">Kept MLP channels.</param>
public readonly record struct LayerShape(long QDim, long KvDim, long Heads, long Intermediate);

/// <summary>
/// Every tensor of a model as the cost model needs it, derived once from <see cref="ModelSpec.Tensors()"/>
/// (and, for LoRAM, with the middle layers structurally pruned).
/// </summary>
public sealed class ModelInventory
{
    /// <summary>The architecture.</summary>
    public ModelSpec Spec { get; }
    /// <summary>The LoRAM pruning ratio applied (0 = none).</summary>
    public double Prune { get; }
    /// <summary>Every decoder linear weight.</summary>
    public IReadOnlyList<LinearTensor> Linears { get; }
    /// <summary>The decoder linears of each layer (index = layer).</summary>
    public IReadOnlyList<IReadOnlyList<LinearTensor>> LinearsByLayer { get; }
    /// <summary>Per-layer dimensions.</summary>
    public IReadOnlyList<LayerShape> Layers { get; }
    /// <summary>Elements of the token embedding.</summary>
    public long EmbeddingElements { get; }
    /// <summary>Elements of the LM head (0 when tied to the embedding).</summary>
    public long LmHeadElements { get; }
    /// <summary>Elements of all RMSNorm weights (layers and final).</summary>
    public long NormElements { get; }
    /// <summary>Elements of all projection biases.</summary>
    public long BiasElements { get; }
    /// <summary>Elements of the norm weights of one decoder layer.</summary>
    public long NormElementsPerLayer { get; }

    /// <summary>Total parameters.</summary>
    public long ParameterCount => Linears.Sum(l => l.Elements) + EmbeddingElements + LmHeadElements + NormElements + BiasElements;

    /// <summary>Parameters of the decoder linears (the tensors that get quantized).</summary>
    public long LinearElements => Linears.Sum(l => l.Elements);

    private ModelInventory(ModelSpec spec, double prune, List<LinearTensor> linears, List<LayerShape> layers,
        long embedding, long head, long norms, long biases, long normsPerLayer)
    {
        Spec = spec; Prune = prune; Linears = linears; Layers = layers;
        EmbeddingElements = embedding; LmHeadElements = head; NormElements = norms; BiasElements = biases;
        NormElementsPerLayer = normsPerLayer;
        var byLayer = new List<LinearTensor>[layers.Count];
        for (int l = 0; l < byLayer.Length; l++) byLayer[l] = [];
        foreach (LinearTensor t in linears) byLayer[t.Layer].Add(t);
        LinearsByLayer = byLayer;
    }

    /// <summary>Builds the inventory of <paramref name="spec"/>, pruned by <paramref name="prune"/> (see <see cref="LoramPruning"/>).</summary>
    /// <remarks>Every shape is read from <see cref="ModelSpec.Tensors(Func{int, LayerDims})"/> at the kept widths; nothing is derived here.</remarks>
    public static ModelInventory Build(ModelSpec spec, double prune = 0)
    {
        LayerDims[] dims = [.. Enumerable.Range(0, spec.NumLayers).Select(l => LoramPruning.Dims(spec, l, prune))];
        var linears = new List<LinearTensor>(spec.NumLayers * 7);
        var biasOf = new Dictionary<(int Layer, LinearModule Module), long>();
        long embedding = 0, head = 0, norms = 0, biases = 0;
        foreach (TensorSpec t in spec.Tensors(l => dims[l]))
        {
            switch (t.Role)
            {
                case TensorRole.Embedding: embedding += t.ElementCount; break;
                case TensorRole.LmHead: head += t.ElementCount; break;
                case TensorRole.Norm: norms += t.ElementCount; break;
                case TensorRole.Bias:
                    biases += t.ElementCount;
                    biasOf[(t.Layer, ModuleOf(t.Name, ".bias"))] = t.ElementCount;
                    break;
                case TensorRole.Linear when t.Name.EndsWith("qkv_proj.weight", StringComparison.Ordinal):
                {
                    // Phi-3's fused projections hold the rows of q, k, v (gate, up): the same weights, inputs and outputs as
                    // the separate ones, so they are priced as those.
                    long q = (long)dims[t.Layer].NumHeads * spec.HeadDim, kv = (long)dims[t.Layer].NumKvHeads * spec.HeadDim;
                    linears.Add(new LinearTensor(t.Layer, LinearModule.Q, q, t.Shape[1], 0));
                    linears.Add(new LinearTensor(t.Layer, LinearModule.K, kv, t.Shape[1], 0));
                    linears.Add(new LinearTensor(t.Layer, LinearModule.V, kv, t.Shape[1], 0));
                    break;
                }
                case TensorRole.Linear when t.Name.EndsWith("gate_up_proj.weight", StringComparison.Ordinal):
                    linears.Add(new LinearTensor(t.Layer, LinearModule.Gate, t.Shape[0] / 2, t.Shape[1], 0));
                    linears.Add(new LinearTensor(t.Layer, LinearModule.Up, t.Shape[0] / 2, t.Shape[1], 0));
                    break;
                case TensorRole.Linear:
                    linears.Add(new LinearTensor(t.Layer, ModuleOf(t.Name, ".weight"), t.Shape[0], t.Shape[1], 0));
                    break;
            }
        }
        for (int i = 0; i < linears.Count; i++)
            if (biasOf.TryGetValue((linears[i].Layer, linears[i].Module), out long bias))
                linears[i] = linears[i] with { BiasElements = bias };
        var layers = new List<LayerShape>(spec.NumLayers);
        for (int l = 0; l < spec.NumLayers; l++)
            layers.Add(LoramPruning.ShapeOf(spec, dims[l]));
        return new ModelInventory(spec, prune, linears, layers, embedding, head, norms, biases, 2L * spec.HiddenSize);
    }

    private static LinearModule ModuleOf(string name, string suffix)
    {
        string projection = name.EndsWith(suffix, StringComparison.Ordinal) ? name[..^suffix.Length] : name;
        if (projection.EndsWith("q_proj", StringComparison.Ordinal)) return LinearModule.Q;
        if (projection.EndsWith("k_proj", StringComparison.Ordinal)) return LinearModule.K;
        if (projection.EndsWith("v_proj", StringComparison.Ordinal)) return LinearModule.V;
        if (projection.EndsWith("o_proj", StringComparison.Ordinal)) return LinearModule.O;
        if (projection.EndsWith("gate_proj", StringComparison.Ordinal)) return LinearModule.Gate;
        if (projection.EndsWith("up_proj", StringComparison.Ordinal)) return LinearModule.Up;
        if (projection.EndsWith("down_proj", StringComparison.Ordinal)) return LinearModule.Down;
        throw new PlanningException($"model spec: tensor '{name}' is not a weight or bias of q/k/v/o/gate/up/down_proj");
    }
}
