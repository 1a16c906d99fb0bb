using System.Text.Json;
using System.Text.Json.Nodes;
using QuantPeft.Formats.HuggingFace;
using QuantPeft.Formats;
using QuantPeft.Trainers.Data;

namespace QuantPeft.Trainers.Pruning;

/// <summary>
/// The kept heads and channels of every block of a LoRAM-pruned model, in the unpruned model's indices. It maps pruned
/// widths back to original ones: a kept key/value head <c>g</c> owns k/v rows <c>[g·d, (g+1)·d)</c> and, with the
/// <c>G = heads / kv_heads</c> query heads that share it (Hugging Face's <c>repeat_kv</c> order), q rows and o columns
/// <c>[g·G·d, (g+1)·G·d)</c>.
/// </summary>
public sealed class PruningPlan
{
    /// <summary>The file name under which a run records its plan.</summary>
    public const string FileName = "pruning.json";

    /// <summary>Creates a plan for <paramref name="spec"/>; <paramref name="layers"/> has one entry per block, in order.</summary>
    public PruningPlan(ModelSpec spec, double ratio, PruningCriterion criterion, long seed, IReadOnlyList<LayerPruning> layers)
    {
        if (layers.Count != spec.NumLayers || layers.Where((l, i) => l.Layer != i).Any())
            throw new ArgumentException($"expected one entry per block 0..{spec.NumLayers - 1}, in order", nameof(layers));
        Spec = spec;
        Ratio = ratio;
        Criterion = criterion;
        Seed = seed;
        Layers = layers;
    }

    /// <summary>The unpruned architecture.</summary>
    public ModelSpec Spec { get; }

    /// <summary>The pruning ratio.</summary>
    public double Ratio { get; }

    /// <summary>How the kept units were chosen.</summary>
    public PruningCriterion Criterion { get; }

    /// <summary>Seed of the random criterion.</summary>
    public long Seed { get; }

    /// <summary>One entry per block.</summary>
    public IReadOnlyList<LayerPruning> Layers { get; }

    /// <summary>Kept rows of q_proj (and columns of o_proj) of block <paramref name="layer"/>, ascending.</summary>
    public long[] KeptQueryRows(int layer) => HeadRows(Layers[layer].KeptKvHeads, (long)Spec.GroupSize * Spec.HeadDim);

    /// <summary>Kept rows of k_proj and v_proj of block <paramref name="layer"/>, ascending.</summary>
    public long[] KeptKvRows(int layer) => HeadRows(Layers[layer].KeptKvHeads, Spec.HeadDim);

    /// <summary>Kept MLP channels of block <paramref name="layer"/>, ascending.</summary>
    public long[] KeptChannels(int layer) => Layers[layer].KeptChannels.Select(c => (long)c).ToArray();

    /// <summary>Kept rows of Phi-3's fused qkv_proj of block <paramref name="layer"/>: the kept q rows, then k's, then v's, offset.</summary>
    public long[] KeptQkvRows(int layer) =>
        FusedQkvRows(KeptQueryRows(layer), KeptKvRows(layer), (long)Spec.NumHeads * Spec.HeadDim, (long)Spec.NumKvHeads * Spec.HeadDim);

    /// <summary>Kept rows of Phi-3's fused gate_up_proj of block <paramref name="layer"/>: the kept gate rows, then the same up rows.</summary>
    public long[] KeptGateUpRows(int layer) => FusedGateUpRows(KeptChannels(layer), Spec.IntermediateSize);

    /// <summary>The rows of a fused q/k/v weight that hold <paramref name="queryRows"/> of q and <paramref name="kvRows"/> of k and v.</summary>
    public static long[] FusedQkvRows(long[] queryRows, long[] kvRows, long qWidth, long kvWidth) =>
        [.. queryRows, .. kvRows.Select(r => qWidth + r), .. kvRows.Select(r => qWidth + kvWidth + r)];

    /// <summary>The rows of a fused gate/up weight that hold <paramref name="channels"/> of both halves.</summary>
    public static long[] FusedGateUpRows(long[] channels, long intermediate) => [.. channels, .. channels.Select(c => intermediate + c)];

    /// <summary>Parameters of the pruned model (tied embeddings counted once): what a pruned load keeps resident.</summary>
    public long KeptParameterCount()
    {
        long h = Spec.HiddenSize, d = Spec.HeadDim, total = 0;
        foreach (var t in Spec.Tensors().Where(t => t.Layer < 0)) total += t.ElementCount;
        foreach (var l in Layers)
        {
            long kv = l.KeptKvHeads.Count * d, q = kv * Spec.GroupSize, i = l.KeptChannels.Count;
            total += 2 * h + 2 * q * h + 2 * kv * h + 3 * i * h;
            if (Spec.AttentionBias) total += q + 2 * kv;
            if (Spec.OutputProjectionBias) total += h;
        }
        return total;
    }

    /// <summary>Writes the plan as JSON (atomically): the ratio, criterion, seed, widths and every pruned block's kept indices.</summary>
    public void Save(string path)
    {
        var layers = new JsonArray();
        foreach (var l in Layers)
        {
            var entry = new JsonObject { ["layer"] = l.Layer, ["pruned"] = l.Pruned };
            if (l.Pruned)
            {
                entry["kept_kv_heads"] = new JsonArray([.. l.KeptKvHeads.Select(i => JsonValue.Create(i))]);
                entry["kept_query_heads"] = new JsonArray([.. l.KeptKvHeads
                    .SelectMany(g => Enumerable.Range(g * Spec.GroupSize, Spec.GroupSize)).Select(i => JsonValue.Create(i))]);
                entry["kept_channels"] = new JsonArray([.. l.KeptChannels.Select(i => JsonValue.Create(i))]);
            }
            layers.Add(entry);
        }
        var root = new JsonObject
        {
            ["method"] = "loram",
            ["ratio"] = Ratio,
            ["criterion"] = PruningCriteria.Name(Criterion),
            ["seed"] = Seed,
            ["num_hidden_layers"] = Spec.NumLayers,
            ["num_attention_heads"] = Spec.NumHeads,
            ["num_key_value_heads"] = Spec.NumKvHeads,
            ["head_dim"] = Spec.HeadDim,
            ["intermediate_size"] = Spec.IntermediateSize,
            ["kept_parameters"] = KeptParameterCount(),
            ["total_parameters"] = Spec.ParameterCount,
            ["layers"] = layers,
        };
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        AtomicFile.WriteAllBytes(path, JsonSerializer.SerializeToUtf8Bytes(root, new JsonSerializerOptions { WriteIndented = true }));
    }

    /// <summary>The rows of whole heads <paramref name="heads"/> when each head spans <paramref name="width"/> rows.</summary>
    internal static long[] HeadRows(IReadOnlyList<int> heads, long width) =>
        heads.SelectMany(g => Enumerable.Range(0, (int)width).Select(r => g * width + r)).ToArray();
}
