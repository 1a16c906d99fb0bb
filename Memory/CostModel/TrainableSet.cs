using QuantPeft.Memory.Planning;
using QuantPeft.Memory.Planning.Methods;

namespace QuantPeft.Memory.CostModel;

/// <summary>One trainable tensor as the optimizer sees it.</summary>
/// <param name="Elements">Number of elements.</param>
/// <param name="Unit">The update unit it belongs to for layer-wise and FSDP accounting: its decoder layer, the embedding, the head or the final norm.</param>
/// <param name="Rows">Rows of a matrix GaLore projects (0 for tensors GaLore leaves to plain AdamW).</param>
/// <param name="Cols">Columns of a matrix GaLore projects.</param>
public readonly record struct TrainableTensor(long Elements, UpdateUnit Unit, long Rows = 0, long Cols = 0)
{
    /// <summary>Whether GaLore projects this tensor's gradient (the attention/MLP linear weights).</summary>
    public bool IsGaloreMatrix => Rows > 0;
}

/// <summary>
/// What a strategy trains and what it adds to the model: the trainable tensors (which decide gradients and
/// optimizer states) and the frozen adapter tensors.
/// </summary>
public sealed class TrainableSet
{
    /// <summary>Trainable tensors.</summary>
    public IReadOnlyList<TrainableTensor> Tensors { get; }
    /// <summary>Elements of adapter tensors, trainable and frozen (bf16 on the device).</summary>
    public long AdapterElements { get; }
    /// <summary>Decoder layers whose own weights are trained (all for full-parameter methods, γ for LISA, none for adapters).</summary>
    public IReadOnlySet<int> TrainedLayers { get; }

    private TrainableSet(List<TrainableTensor> tensors, long adapterElements, HashSet<int> trainedLayers)
    {
        Tensors = tensors; AdapterElements = adapterElements; TrainedLayers = trainedLayers;
    }

    /// <summary>Total trainable elements.</summary>
    public long TrainableElements => Tensors.Sum(t => t.Elements);

    /// <summary>Elements of the largest update unit (one decoder layer's trainable tensors, the embedding, or the head).</summary>
    public long LargestUnitElements => Tensors.GroupBy(t => t.Unit).Max(g => g.Sum(t => t.Elements));

    /// <summary>
    /// Builds the set. An adapter method's tensors per target matrix come from its descriptor's
    /// <see cref="AdapterCost"/> (<see cref="MethodRegistry"/>): e.g. LoRA r·(d_in + d_out) trainable, OSoRA r + d_out
    /// trainable and frozen U_r, V_r, VeRA r + d_out trainable and one frozen pair shared by every target.
    /// </summary>
    public static TrainableSet Build(ModelInventory inv, Strategy s)
    {
        var tensors = new List<TrainableTensor>();
        var trainedLayers = new HashSet<int>();
        long adapter = 0;
        long h = inv.Spec.HiddenSize;
        switch (s.Method)
        {
            case TrainingMethod.Full:
            case TrainingMethod.Galore:
            case TrainingMethod.NaturalGalore:
            case TrainingMethod.Lisa:
                IEnumerable<int> layers = Enumerable.Range(0, inv.Layers.Count);
                if (s.Method == TrainingMethod.Lisa)
                    layers = LargestLayers(inv, s.LisaLayers);
                foreach (int l in layers)
                {
                    trainedLayers.Add(l);
                    foreach (LinearTensor t in inv.LinearsByLayer[l])
                    {
                        tensors.Add(new TrainableTensor(t.Elements, l, t.Out, t.In));
                        if (t.BiasElements > 0) tensors.Add(new TrainableTensor(t.BiasElements, l));
                    }
                    tensors.Add(new TrainableTensor(h, l));
                    tensors.Add(new TrainableTensor(h, l));
                }
                tensors.Add(new TrainableTensor(inv.EmbeddingElements, UpdateUnit.Embedding));
                if (inv.LmHeadElements > 0) tensors.Add(new TrainableTensor(inv.LmHeadElements, UpdateUnit.LmHead));
                tensors.Add(new TrainableTensor(h, UpdateUnit.FinalNorm));
                break;
            default:
                var cost = MethodRegistry.Of(s.Method).Adapter
                    ?? throw new InvalidOperationException($"{s.Method} trains the base weights but is not priced as such");
                long maxIn = 0, maxOut = 0, fusedOut = 0;
                foreach (LinearTensor t in inv.Linears.Where(t => s.Targets.Contains(t.Module)))
                {
                    // Phi-3: k, v (up) are rows of the fused qkv_proj (gate_up_proj) whose one adapter shares A (OSoRA's V and S,
                    // VeRA's λ_d) across the parts; their B rows and output-sized vectors are priced part by part.
                    bool tail = SharesFusedInput(inv, t.Module);
                    fusedOut = tail ? fusedOut + t.Out : t.Out;
                    maxIn = Math.Max(maxIn, t.In); maxOut = Math.Max(maxOut, fusedOut);
                    var target = new AdapterTarget(t.In, t.Out, s.Rank, tail);
                    foreach (long elements in cost.Trainable(target))
                    {
                        tensors.Add(new TrainableTensor(elements, t.Layer));
                        adapter += elements;
                    }
                    adapter += cost.Frozen(target);
                }
                if (cost.Shared is { } shared)
                    adapter += shared(maxIn, maxOut, s.Rank);
                break;
        }
        return new TrainableSet(tensors, adapter, trainedLayers);
    }

    /// <summary>
    /// Whether <paramref name="module"/> continues a fused projection begun by the module before it (k and v after q in Phi-3's
    /// qkv_proj, up after gate in its gate_up_proj), so that the adapter's input side is already priced.
    /// </summary>
    internal static bool SharesFusedInput(ModelInventory inv, LinearModule module) =>
        inv.Spec.FusedProjections && module is LinearModule.K or LinearModule.V or LinearModule.Up;

    // LISA samples γ layers uniformly; the plan must hold for the worst draw, the γ largest layers.
    private static IEnumerable<int> LargestLayers(ModelInventory inv, int count) =>
        Enumerable.Range(0, inv.Layers.Count)
            .OrderByDescending(l => inv.LinearsByLayer[l].Sum(t => t.Elements)).ThenBy(l => l)
            .Take(count);
}
