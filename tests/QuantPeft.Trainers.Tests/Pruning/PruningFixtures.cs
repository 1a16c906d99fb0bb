using QuantPeft.Formats.HuggingFace;
using QuantPeft.Trainers.Model;
using QuantPeft.Trainers.Pruning;
using QuantPeft.Trainers.Tests.Model;

namespace QuantPeft.Trainers.Tests.Pruning;

/// <summary>Tiny grouped-query specs and the "pruned units contribute nothing" construction the LoRAM tests rely on.</summary>
internal static class PruningFixtures
{
    /// <summary>4 query heads sharing 2 key/value heads (group 2, head_dim 4), 24 MLP channels.</summary>
    public static ModelSpec Gqa(int layers) => TinyModels.Llama() with { NumLayers = layers };

    /// <summary>
    /// Zeroes, in <paramref name="checkpoint"/>, every weight of the units a block does not keep, derived from the
    /// Hugging Face layout itself (query head h reads key/value head h / G; o_proj column c belongs to query head c / d):
    /// then a pruned unit contributes exactly nothing to the unpruned model.
    /// </summary>
    public static void ZeroOutside(DictionarySource checkpoint, ModelSpec spec, int layer, IReadOnlyCollection<int> keptKvHeads, IReadOnlyCollection<int> keptChannels)
    {
        int h = spec.HiddenSize, d = spec.HeadDim, g = spec.GroupSize;
        string p = $"model.layers.{layer}.";
        bool QueryKept(int row) => keptKvHeads.Contains(row / d / g);
        bool KvKept(int row) => keptKvHeads.Contains(row / d);
        if (spec.FusedProjections)
        {
            // Phi-3: q rows, then k rows, then v rows in qkv_proj; gate rows, then up rows in gate_up_proj.
            int q = spec.NumHeads * d, kv = spec.NumKvHeads * d, i = spec.IntermediateSize;
            ZeroRows(checkpoint.Data(p + "self_attn.qkv_proj.weight"), h, r => r < q ? !QueryKept(r) : !KvKept((r - q) % kv));
            ZeroColumns(checkpoint.Data(p + "self_attn.o_proj.weight"), q, c => !QueryKept(c));
            ZeroRows(checkpoint.Data(p + "mlp.gate_up_proj.weight"), h, r => !keptChannels.Contains(r % i));
            ZeroColumns(checkpoint.Data(p + "mlp.down_proj.weight"), i, c => !keptChannels.Contains(c));
            return;
        }
        ZeroRows(checkpoint.Data(p + "self_attn.q_proj.weight"), h, r => !QueryKept(r));
        ZeroRows(checkpoint.Data(p + "self_attn.k_proj.weight"), h, r => !KvKept(r));
        ZeroRows(checkpoint.Data(p + "self_attn.v_proj.weight"), h, r => !KvKept(r));
        ZeroColumns(checkpoint.Data(p + "self_attn.o_proj.weight"), spec.NumHeads * d, c => !QueryKept(c));
        ZeroRows(checkpoint.Data(p + "mlp.gate_proj.weight"), h, r => !keptChannels.Contains(r));
        ZeroRows(checkpoint.Data(p + "mlp.up_proj.weight"), h, r => !keptChannels.Contains(r));
        ZeroColumns(checkpoint.Data(p + "mlp.down_proj.weight"), spec.IntermediateSize, c => !keptChannels.Contains(c));
    }

    public static CausalLm Pruned(ModelSpec spec, ITensorSource checkpoint, LoramPruner pruner, LinearFactory? linear = null)
    {
        var model = new CausalLm(spec, new DecoderOptions { ComputeDType = TorchSharp.torch.ScalarType.Float32, Pruning = pruner, LinearFactory = linear });
        model.LoadWeights(checkpoint);
        return model;
    }

    private static void ZeroRows(float[] data, int width, Func<int, bool> zero)
    {
        for (int r = 0; r < data.Length / width; r++)
            if (zero(r)) Array.Clear(data, r * width, width);
    }

    private static void ZeroColumns(float[] data, int width, Func<int, bool> zero)
    {
        for (int i = 0; i < data.Length; i++)
            if (zero(i % width)) data[i] = 0;
    }
}
