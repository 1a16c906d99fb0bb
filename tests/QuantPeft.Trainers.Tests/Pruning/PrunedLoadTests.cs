using QuantPeft.Formats.HuggingFace;
using QuantPeft.Memory.CostModel;
using QuantPeft.Trainers.Model;
using QuantPeft.Trainers.Pruning;
using QuantPeft.Trainers.Tests.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Tests.Pruning;

public class PrunedLoadTests
{
    private static readonly long[,] Ids = { { 3, 1, 4, 1, 5, 9, 2, 6, 5, 3 } };

    [Fact]
    public void MagnitudePrunesExactlyTheUnitsThatContributeNothing_AndThePrunedModelComputesTheSameLogits()
    {
        var spec = PruningFixtures.Gqa(layers: 2);
        var checkpoint = TinyModels.RandomCheckpoint(spec, 3);
        // Block 0 loses kv head 1 (with query heads 2, 3) and the even channels; block 1 loses kv head 0 and a scattered half.
        int[][] keptHeads = [[0], [1]];
        int[][] keptChannels = [Enumerable.Range(0, 12).Select(i => 2 * i + 1).ToArray(), [0, 1, 2, 5, 7, 8, 11, 13, 17, 19, 22, 23]];
        for (int l = 0; l < 2; l++) PruningFixtures.ZeroOutside(checkpoint, spec, l, keptHeads[l], keptChannels[l]);

        var pruner = new LoramPruner(spec, 0.5, PruningCriterion.Magnitude, seed: 1);
        using var pruned = PruningFixtures.Pruned(spec, checkpoint, pruner);
        using var full = TinyModels.Build(spec, checkpoint);
        for (int l = 0; l < 2; l++)
        {
            Assert.Equal(keptHeads[l], pruner.Plan.Layers[l].KeptKvHeads);
            Assert.Equal(keptChannels[l], pruner.Plan.Layers[l].KeptChannels);
            Assert.Equal(new LayerDims(2, 1, 12), pruned.DimsOf(l));
        }
        using var ids = TinyModels.Ids(Ids);
        using var a = pruned.call(ids);
        using var b = full.call(ids);
        Assert.True(a.allclose(b, rtol: 1e-5, atol: 1e-5), $"max diff {(a - b).abs().max().item<float>()}");
    }

    [Fact]
    public void RandomPlanIsSeeded_AndThePrunedModelEqualsTheFullModelWithTheDroppedUnitsZeroed()
    {
        var spec = PruningFixtures.Gqa(layers: 2);
        var checkpoint = TinyModels.RandomCheckpoint(spec, 4);
        var pruner = new LoramPruner(spec, 0.5, PruningCriterion.Random, seed: 9);
        using var pruned = PruningFixtures.Pruned(spec, checkpoint, pruner);
        var plan = pruner.Plan;

        var again = new LoramPruner(spec, 0.5, PruningCriterion.Random, seed: 9);
        using (PruningFixtures.Pruned(spec, checkpoint, again)) { }
        Assert.Equal(plan.Layers.Select(l => l.KeptChannels), again.Plan.Layers.Select(l => l.KeptChannels));
        var other = Enumerable.Range(10, 5).Select(s =>
        {
            var p = new LoramPruner(spec, 0.5, PruningCriterion.Random, seed: s);
            using (PruningFixtures.Pruned(spec, checkpoint, p)) { }
            return p.Plan.Layers[0].KeptChannels;
        });
        Assert.Contains(other, k => !k.SequenceEqual(plan.Layers[0].KeptChannels));

        foreach (var l in plan.Layers)
        {
            Assert.Single(l.KeptKvHeads);
            Assert.Equal(12, l.KeptChannels.Distinct().Count());
            Assert.Equal(l.KeptChannels.Order(), l.KeptChannels);
            Assert.All(l.KeptChannels, c => Assert.InRange(c, 0, 23));
            PruningFixtures.ZeroOutside(checkpoint, spec, l.Layer, l.KeptKvHeads.ToArray(), l.KeptChannels.ToArray());
        }
        using var full = TinyModels.Build(spec, checkpoint);
        using var ids = TinyModels.Ids(Ids);
        using var a = pruned.call(ids);
        using var b = full.call(ids);
        Assert.True(a.allclose(b, rtol: 1e-5, atol: 1e-5), $"max diff {(a - b).abs().max().item<float>()}");
    }

    [Fact]
    public void ResidentParametersAreExactlyTheKeptOnes_AndOnlyTheMiddleBlocksOfADeepModelArePruned()
    {
        // 8 blocks: the first 4 and the last 2 stay whole, blocks 4 and 5 keep 1 of 2 kv heads (2 of 4 query heads) and 12 of 24 channels.
        var spec = PruningFixtures.Gqa(layers: 8);
        var pruner = new LoramPruner(spec, 0.5, PruningCriterion.Random, seed: 2);
        using var model = new CausalLm(spec, new DecoderOptions { Pruning = pruner });   // bf16 parameters
        model.LoadWeights(TinyModels.RandomCheckpoint(spec, 5));

        // Hand count: a whole block is q 16·16 + k, v 8·16 + o 16·16 + 3·24·16 + 2 norms·16 = 1,952; a pruned one
        // 8·16 + 2·4·16 + 16·8 + 3·12·16 + 32 = 992; embedding, head (untied) and final norm 32·16·2 + 16 = 1,040.
        const long kept = 6 * 1952 + 2 * 992 + 1040;
        long resident = model.parameters().Sum(p => p.numel());
        Assert.Equal(kept, resident);
        Assert.Equal(2 * kept, model.parameters().Sum(p => p.numel() * p.ElementSize));
        Assert.Equal(kept, pruner.Plan.KeptParameterCount());
        Assert.Equal([false, false, false, false, true, true, false, false], pruner.Plan.Layers.Select(l => l.Pruned));

        // The planner's cost model assumes the same shapes for a model this deep.
        for (int l = 0; l < spec.NumLayers; l++)
        {
            var shape = LoramPruning.Shape(spec, l, 0.5);
            var dims = model.DimsOf(l);
            Assert.Equal(shape.QDim, dims.NumHeads * spec.HeadDim);
            Assert.Equal(shape.KvDim, dims.NumKvHeads * spec.HeadDim);
            Assert.Equal(shape.Intermediate, dims.IntermediateSize);
        }
    }

    [Fact]
    public void KeptParametersCountTheQueryAndKeyNormsOfAQwen3StyleBlock()
    {
        // q_norm and k_norm (head_dim each) are parameters of every block, pruned or not; the kept count is what loads.
        var spec = PruningFixtures.Gqa(layers: 8) with { QkNorm = true };
        var pruner = new LoramPruner(spec, 0.5, PruningCriterion.Random, seed: 3);
        using var model = new CausalLm(spec, new DecoderOptions { Pruning = pruner });
        model.LoadWeights(TinyModels.RandomCheckpoint(spec, 7));

        // The hand count of the test above plus 2 norms × head_dim 4 in each of the 8 blocks.
        const long kept = 6 * 1952 + 2 * 992 + 1040 + 8 * 2 * 4;
        Assert.Equal(kept, model.parameters().Sum(p => p.numel()));
        Assert.Equal(kept, pruner.Plan.KeptParameterCount());
    }

    [Fact]
    public void EachUnprunedTensorIsReadOnceForRandomAndAtMostTwiceForMagnitude()
    {
        var spec = PruningFixtures.Gqa(layers: 2);
        foreach (var (criterion, most) in new[] { (PruningCriterion.Random, 1), (PruningCriterion.Magnitude, 2) })
        {
            var checkpoint = TinyModels.RandomCheckpoint(spec, 6);
            using (PruningFixtures.Pruned(spec, checkpoint, new LoramPruner(spec, 0.5, criterion, 1))) { }
            Assert.Equal(most, checkpoint.Gets.GroupBy(n => n).Max(g => g.Count()));
            Assert.Equal(spec.Tensors().Select(t => t.Name).Order(), checkpoint.Gets.Distinct().Order());
        }
    }

    [Fact]
    public void BadRequestsAreClearErrors()
    {
        var spec = PruningFixtures.Gqa(layers: 2);
        foreach (double ratio in new[] { 0.0, 1.0, -0.2, 1.5, double.NaN })
            Assert.StartsWith("--prune: expected a ratio in (0, 1)", Assert.Throws<PruningException>(() => new LoramPruner(spec, ratio, PruningCriterion.Random, 1)).Message);
        // 2 kv heads: a ratio this close to 1 removes both.
        Assert.Contains("removes all 2 key/value heads", Assert.Throws<PruningException>(() => new LoramPruner(spec, 0.9999999999, PruningCriterion.Random, 1)).Message);
        // ⌊0.03·24⌋ = 0 channels left.
        Assert.Contains("leaves none of the 24 MLP channels", Assert.Throws<PruningException>(() => new LoramPruner(spec, 0.97, PruningCriterion.Random, 1)).Message);
        Assert.StartsWith("--prune-criterion: expected one of random, magnitude; found 'taylor'", Assert.Throws<PruningException>(() => PruningCriteria.Parse("taylor")).Message);

        // A checkpoint whose tensor is too large to be the spec's is refused before it is cut, naming the tensor.
        var wide = TinyModels.RandomCheckpoint(spec with { IntermediateSize = 48 }, 1);
        var e = Assert.Throws<ModelException>(() => PruningFixtures.Pruned(spec, wide, new LoramPruner(spec, 0.5, PruningCriterion.Random, 1)));
        Assert.Contains("mlp.", e.Message);
        Assert.Contains("expected shape [", e.Message);
    }
}
