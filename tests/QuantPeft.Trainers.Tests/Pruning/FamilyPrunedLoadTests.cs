using QuantPeft.Formats.HuggingFace;
using QuantPeft.Trainers.Model;
using QuantPeft.Trainers.Pruning;
using QuantPeft.Trainers.Tests.Model;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Tests.Pruning;

/// <summary>
/// LoRAM's structured pruning on the families with q/k norms and Gemma's extra norms: the norms act on head_dim (or the
/// hidden size), which pruning never narrows, so they load whole; pruned heads and channels leave the logits unchanged
/// when their weights were zero.
/// </summary>
public class FamilyPrunedLoadTests
{
    [Theory]
    [InlineData("qwen3")]
    [InlineData("gemma2")]
    [InlineData("gemma3")]
    [InlineData("phi3")]
    public void PrunedModel_EqualsTheFullModelWithTheDroppedUnitsZeroed(string family)
    {
        var spec = ModelConfigReader.Read(FamilyParityTests.Folder(family));
        var checkpoint = TinyModels.RandomCheckpoint(spec, 21);
        int[][] keptHeads = Enumerable.Range(0, spec.NumLayers).Select(l => new[] { l % 2 }).ToArray();
        int[][] keptChannels = Enumerable.Range(0, spec.NumLayers)
            .Select(l => Enumerable.Range(0, spec.IntermediateSize / 2).Select(i => 2 * i + (l % 2)).ToArray()).ToArray();
        for (int l = 0; l < spec.NumLayers; l++) PruningFixtures.ZeroOutside(checkpoint, spec, l, keptHeads[l], keptChannels[l]);

        var pruner = new LoramPruner(spec, 0.5, PruningCriterion.Magnitude, seed: 1);
        using var pruned = PruningFixtures.Pruned(spec, checkpoint, pruner);
        using var full = TinyModels.Build(spec, checkpoint);
        for (int l = 0; l < spec.NumLayers; l++)
        {
            Assert.Equal(keptHeads[l], pruner.Plan.Layers[l].KeptKvHeads);
            Assert.Equal(new LayerDims(spec.NumHeads / 2, spec.NumKvHeads / 2, spec.IntermediateSize / 2), pruned.DimsOf(l));
        }
        var qNorm = pruned.named_parameters().Where(p => p.name.EndsWith("self_attn.q_norm.weight", StringComparison.Ordinal)).ToList();
        Assert.Equal(spec.QkNorm ? spec.NumLayers : 0, qNorm.Count);
        Assert.All(qNorm, p => Assert.Equal([(long)spec.HeadDim], p.parameter.shape));
        if (spec.FusedProjections)
        {
            // A pruned block keeps 1 of 2 kv heads (2 of 4 query heads) of 8: qkv_proj 16 + 8 + 8 rows; gate_up 2 · 12 of 24 channels.
            var fused = pruned.named_parameters().ToDictionary(p => p.name, p => p.parameter.shape);
            int middle = Enumerable.Range(0, spec.NumLayers).First(l => LoramPruner.IsPrunedLayer(l, spec.NumLayers));
            Assert.Equal([32L, 32L], fused[$"model.layers.{middle}.self_attn.qkv_proj.weight"]);
            Assert.Equal([24L, 32L], fused[$"model.layers.{middle}.mlp.gate_up_proj.weight"]);
        }

        using var ids = TinyModels.Ids(new long[,] { { 3, 17, 0, 31, 9, 44, 12, 5 } });
        using var a = pruned.call(ids);
        using var b = full.call(ids);
        Assert.True(a.allclose(b, rtol: 1e-5, atol: 1e-5), $"{family}: max diff {(a - b).abs().max().item<float>()}");
    }
}
