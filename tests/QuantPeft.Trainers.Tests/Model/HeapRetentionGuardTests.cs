using QuantPeft.Trainers.Model;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Tests.Model;

/// <summary>
/// The heap guard between decoder blocks (and between each block's attention and MLP) must be invisible to the numbers:
/// forward and every gradient stay bit-identical whether it trims at every boundary (limit 0) or is absent, with and
/// without checkpointing (where a recomputed block also trims between its recomputation and its backward).
/// </summary>
[Collection(nameof(QuantPeft.Trainers.Tests.Recipes.ExactReplay))]
public class HeapRetentionGuardTests
{
    private static readonly long[,] Batch = { { 3, 17, 0, 31, 9, 2, 2 }, { 5, 5, 22, 1, 30, 11, 7 } };

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void GradientsAreBitIdentical_WhenTheGuardTrimsAtEveryBlock(bool checkpoint)
    {
        var spec = TinyModels.Llama();
        using var model = TinyModels.Build(spec, TinyModels.RandomCheckpoint(spec, 21), ScalarType.Float32);
        using var ids = TinyModels.Ids(Batch);
        var plain = BlockCheckpointTests.Gradients(model, ids, checkpoint);

        model.Decoder.HeapRetentionLimit = 0;
        long before = HeapRetentionGuard.BackwardCalls;
        var guarded = BlockCheckpointTests.Gradients(model, ids, checkpoint);
        long calls = HeapRetentionGuard.BackwardCalls - before;
        model.Decoder.HeapRetentionLimit = null;

        // Two guards per block (after it, and between its attention and MLP), each in the graph because the embedding
        // is trainable here; other tests in this process may run guards too, so at least.
        Assert.True(calls >= 2 * spec.NumLayers, $"the guard ran {calls} times in backward, expected at least {2 * spec.NumLayers}");
        Assert.Equal(plain.Keys, guarded.Keys);
        foreach (var (name, g) in plain)
            Assert.Equal(g, guarded[name]);
    }

    [Fact]
    public void FrozenTrunkBeforeTheFirstTrainableBlock_PassesThroughWithoutANode()
    {
        // The LoRA situation: nothing requires grad until the first adapter, so the first guards see a tensor outside
        // the graph and must hand it back as is (an autograd node there would never get a backward call).
        var spec = TinyModels.Llama();
        using var model = TinyModels.Build(spec, TinyModels.RandomCheckpoint(spec, 22), ScalarType.Float32);
        foreach (var (name, p) in model.named_parameters())
            p.requires_grad = name.StartsWith("model.layers.1.", StringComparison.Ordinal);
        using var ids = TinyModels.Ids(Batch);
        var plain = BlockCheckpointTests.Gradients(model, ids, checkpoint: false);
        model.Decoder.HeapRetentionLimit = 0;
        var guarded = BlockCheckpointTests.Gradients(model, ids, checkpoint: false);
        model.Decoder.HeapRetentionLimit = null;
        foreach (var (name, g) in plain)
            Assert.Equal(g, guarded[name]);
        Assert.Contains(guarded, kv => kv.Value is not null && kv.Value.Any(v => v != 0));
    }
}
