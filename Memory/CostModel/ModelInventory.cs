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
/// Every tensor of a model as the cost model needs it, derived once from <see cref="ModelSpec.Tensors"/>
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
    public static ModelInventory Build(ModelSpec spec, double prune = 0)
    {
        var linears = new List<LinearTensor>(spec.NumLayers * 7);
        long embedding = 0, head = 0, norms = 0, biases = 0;
        foreach (TensorSpec t in spec.Tensors())
        {
            switch (t.Role)
            {
                case TensorRole.Embedding: embedding += t.ElementCount; break;
                case TensorRole.LmHead: head += t.ElementCount; break;
                case TensorRole.Norm: norms += t.ElementCount; break;
                case TensorRole.Bias: break; // recomputed below from the (possibly pruned) output widths
                case TensorRole.Linear when t.Name.EndsWith("qkv_proj.weight", StringComparison.Ordinal):
                case TensorRole.Linear when t.Name.EndsWith("gate_up_proj.weight", StringComparison.Ordinal):
                    // Phi-3's fused projections hold the rows of q, k, v (gate, up): the same weights, inputs and outputs as
                    // the separate ones, so they are priced as those (shapes are set from the layer below).
                    foreach (var part in t.Name.EndsWith("qkv_proj.weight", StringComparison.Ordinal)
                        ? (LinearModule[])[LinearModule.Q, LinearModule.K, LinearModule.V] : [LinearModule.Gate, LinearModule.Up])
                        linears.Add(new LinearTensor(t.Layer, part, 0, t.Shape[1], 0));
                    break;
                case TensorRole.Linear:
                    linears.Add(new LinearTensor(t.Layer, ModuleOf(t.Name), t.Shape[0], t.Shape[1], 0));
                    break;
            }
        }
        var layers = new List<LayerShape>(spec.NumLayers);
        for (int l = 0; l < spec.NumLayers; l++)
            layers.Add(LoramPruning.Shape(spec, l, prune));
        for (int i = 0; i < linears.Count; i++)
        {
            LinearTensor lin = linears[i];
            LayerShape s = layers[lin.Layer];
            long h = spec.HiddenSize;
            (long o, long inn) = lin.Module switch
            {
                LinearModule.Q => (s.QDim, h),
                LinearModule.K or LinearModule.V => (s.KvDim, h),
                LinearModule.O => (h, s.QDim),
                LinearModule.Gate or LinearModule.Up => (s.Intermediate, h),
                _ => (h, s.Intermediate),
            };
            bool hasBias = lin.Module is LinearModule.Q or LinearModule.K or LinearModule.V
                ? spec.AttentionBias
                : lin.Module == LinearModule.O && spec.OutputProjectionBias;
            long bias = hasBias ? o : 0;
            linears[i] = lin with { Out = o, In = inn, BiasElements = bias };
            biases += bias;
        }
        return new ModelInventory(spec, prune, linears, layers, embedding, head, norms, biases, 2L * spec.HiddenSize);
    }

    private static LinearModule ModuleOf(string name)
    {
        if (name.EndsWith("q_proj.weight", StringComparison.Ordinal)) return LinearModule.Q;
        if (name.EndsWith("k_proj.weight", StringComparison.Ordinal)) return LinearModule.K;
        if (name.EndsWith("v_proj.weight", StringComparison.Ordinal)) return LinearModule.V;
        if (name.EndsWith("o_proj.weight", StringComparison.Ordinal)) return LinearModule.O;
        if (name.EndsWith("gate_proj.weight", StringComparison.Ordinal)) return LinearModule.Gate;
        if (name.EndsWith("up_proj.weight", StringComparison.Ordinal)) return LinearModule.Up;
        if (name.EndsWith("down_proj.weight", StringComparison.Ordinal)) return LinearModule.Down;
        throw new PlanningException($"model spec: tensor '{name}' has role Linear but is not one of q/k/v/o/gate/up/down_proj");
    }
}
