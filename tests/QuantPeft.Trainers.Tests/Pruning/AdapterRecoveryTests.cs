using QuantPeft.Memory.Planning;
using QuantPeft.Trainers.Adapters;
using QuantPeft.Trainers.Model;
using QuantPeft.Trainers.Pruning;
using QuantPeft.Trainers.Tests.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Tests.Pruning;

public class AdapterRecoveryTests
{
    private static readonly long[,] Ids = { { 7, 1, 30, 2, 8, 2, 8, 18, 28, 4 } };

    // A pruned model with LoRA on all seven projections whose B factors are random, as after training.
    private static (CausalLm Model, IReadOnlyList<AttachedAdapter> Adapters, PruningPlan Plan) TrainedPruned(
        Formats.HuggingFace.ModelSpec spec, DictionarySource checkpoint, PruningCriterion criterion)
    {
        var pruner = new LoramPruner(spec, 0.5, criterion, seed: 5);
        var model = PruningFixtures.Pruned(spec, checkpoint, pruner, BaseWeights.Factory(WeightFormat.Bf16, false, ScalarType.Float32));
        var adapters = ModelAdapters.Attach(model, AdapterMethod.Lora, new LoraOptions(2, 4), ModelAdapters.AllLinear, seed: 3);
        manual_seed(8);
        using (no_grad())
            foreach (var a in adapters) ((LoraLinear)a.Layer).B.normal_(0, 0.3);
        return (model, adapters, pruner.Plan);
    }

    [Fact]
    public void RecoveredFactorsHoldTheTrainedValuesAtKeptIndicesAndExactZerosElsewhere_SoDeltaWAgreesOnKeptRowsAndColumns()
    {
        var spec = PruningFixtures.Gqa(layers: 2);
        var (model, adapters, plan) = TrainedPruned(spec, TinyModels.RandomCheckpoint(spec, 1), PruningCriterion.Random);
        using var _ = model;
        foreach (var a in adapters)
        {
            var lora = (LoraLinear)a.Layer;
            int layer = int.Parse(a.ModulePath.Split('.')[2]);
            string proj = a.ModulePath.Split('.')[^1];
            // Independent of the plan's own row maps: query head q keeps iff its kv head q / G is kept; rows of head q are [q·d, (q+1)·d).
            var keptHeads = plan.Layers[layer].KeptKvHeads;
            long d = spec.HeadDim, g = spec.GroupSize;
            long[] queryRows = Enumerable.Range(0, (int)(spec.NumHeads * d)).Where(r => keptHeads.Contains((int)(r / d / g))).Select(r => (long)r).ToArray();
            long[] kvRows = Enumerable.Range(0, (int)(spec.NumKvHeads * d)).Where(r => keptHeads.Contains((int)(r / d))).Select(r => (long)r).ToArray();
            long[] channels = plan.Layers[layer].KeptChannels.Select(c => (long)c).ToArray();
            long[] hidden = Enumerable.Range(0, spec.HiddenSize).Select(i => (long)i).ToArray();
            var (rows, cols, fullOut, fullIn) = proj switch
            {
                "q_proj" => (queryRows, hidden, spec.NumHeads * d, (long)spec.HiddenSize),
                "k_proj" or "v_proj" => (kvRows, hidden, spec.NumKvHeads * d, spec.HiddenSize),
                "o_proj" => (hidden, queryRows, spec.HiddenSize, spec.NumHeads * d),
                "gate_proj" or "up_proj" => (channels, hidden, spec.IntermediateSize, spec.HiddenSize),
                _ => (hidden, channels, spec.HiddenSize, (long)spec.IntermediateSize),
            };
            using var a0 = AdapterRecovery.Expand(plan, a.ModulePath, "lora_A.weight", lora.A);
            using var b0 = AdapterRecovery.Expand(plan, a.ModulePath, "lora_B.weight", lora.B);
            var fullA = a0 ?? lora.A;
            var fullB = b0 ?? lora.B;
            Assert.Equal([2, fullIn], fullA.shape);
            Assert.Equal([fullOut, 2], fullB.shape);
            using var rowIndex = tensor(rows);
            using var colIndex = tensor(cols);
            Assert.True(fullB.index_select(0, rowIndex).eq(lora.B).all().item<bool>(), a.ModulePath);
            Assert.True(fullA.index_select(1, colIndex).eq(lora.A).all().item<bool>(), a.ModulePath);
            // Everything else exactly zero.
            using (var rest = fullB.clone().index_fill_(0, rowIndex, 0)) Assert.Equal(0, rest.count_nonzero().item<long>());
            using (var rest = fullA.clone().index_fill_(1, colIndex, 0)) Assert.Equal(0, rest.count_nonzero().item<long>());

            using var deltaFull = fullB.to(ScalarType.Float64).matmul(fullA.to(ScalarType.Float64));
            using var deltaPruned = lora.B.to(ScalarType.Float64).matmul(lora.A.to(ScalarType.Float64));
            using var kept = deltaFull.index_select(0, rowIndex).index_select(1, colIndex);
            Assert.True(kept.allclose(deltaPruned, rtol: 1e-12, atol: 1e-14), a.ModulePath);
            using var outside = deltaFull.clone();
            outside.index_put_(zeros(1, dtype: ScalarType.Float64), TensorIndex.Tensor(rowIndex.unsqueeze(1)), TensorIndex.Tensor(colIndex.unsqueeze(0)));
            Assert.Equal(0, outside.count_nonzero().item<long>());
        }
    }

    [Fact]
    public void RecoveredAdapterOnTheUnprunedModelComputesWhatThePrunedModelDoesWhenPrunedUnitsCarryNothing()
    {
        // Magnitude pruning of a checkpoint whose dropped units are zero: the unpruned model with the recovered adapter
        // must then produce the pruned model's logits, because recovery puts zeros exactly where the base is zero.
        var spec = PruningFixtures.Gqa(layers: 2);
        var checkpoint = TinyModels.RandomCheckpoint(spec, 2);
        PruningFixtures.ZeroOutside(checkpoint, spec, 0, [1], Enumerable.Range(0, 12).ToArray());
        PruningFixtures.ZeroOutside(checkpoint, spec, 1, [0], Enumerable.Range(0, 12).Select(i => 23 - 2 * i).ToArray());
        var (pruned, adapters, plan) = TrainedPruned(spec, checkpoint, PruningCriterion.Magnitude);
        using var _ = pruned;

        using var full = new CausalLm(spec, new DecoderOptions { ComputeDType = ScalarType.Float32, LinearFactory = BaseWeights.Factory(WeightFormat.Bf16, false, ScalarType.Float32) });
        full.LoadWeights(checkpoint);
        var fullAdapters = ModelAdapters.Attach(full, AdapterMethod.Lora, new LoraOptions(2, 4), ModelAdapters.AllLinear, seed: 3);
        using var ids = TinyModels.Ids(Ids);
        using var before = full.call(ids);
        foreach (var (a, f) in adapters.Zip(fullAdapters))
        {
            Assert.Equal(a.ModulePath, f.ModulePath);
            var recovered = a.Layer.AdapterTensors().ToDictionary(kv => kv.Key, kv => AdapterRecovery.Expand(plan, a.ModulePath, kv.Key, kv.Value) ?? kv.Value.alias());
            f.Layer.LoadAdapterTensors(recovered);
            foreach (var t in recovered.Values) t.Dispose();
        }
        using var expected = pruned.call(ids);
        using var actual = full.call(ids);
        Assert.True((expected - before).abs().max().item<float>() > 0.1, "the adapter should move the logits");
        Assert.True(actual.allclose(expected, rtol: 1e-5, atol: 1e-5), $"max diff {(actual - expected).abs().max().item<float>()}");
    }

    [Fact]
    public void ProjectionsOfUnprunedBlocksAndHiddenSideFactorsAreLeftAsTheyAre()
    {
        var spec = PruningFixtures.Gqa(layers: 8);
        var pruner = new LoramPruner(spec, 0.5, PruningCriterion.Random, seed: 2);
        using (PruningFixtures.Pruned(spec, TinyModels.RandomCheckpoint(spec, 5), pruner)) { }
        using var a = zeros(2, 16);
        Assert.Null(AdapterRecovery.Expand(pruner.Plan, "model.layers.0.self_attn.q_proj", "lora_B.weight", zeros(16, 2)));
        Assert.Null(AdapterRecovery.Expand(pruner.Plan, "model.layers.4.self_attn.q_proj", "lora_A.weight", a));
        Assert.Null(AdapterRecovery.Expand(pruner.Plan, "model.layers.4.mlp.down_proj", "lora_B.weight", zeros(16, 2)));
        var e = Assert.Throws<PruningException>(() => AdapterRecovery.Expand(pruner.Plan, "model.layers.4.mlp.up_proj", "lora_B.weight", zeros(24, 2)));
        Assert.Contains("expected 12 entries along dimension 0", e.Message);
    }
}
