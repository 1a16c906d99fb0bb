using QuantPeft.Memory.Planning;
using QuantPeft.Trainers.Adapters;
using QuantPeft.Trainers.Adapters.Methods;
using QuantPeft.Trainers.Model;
using QuantPeft.Trainers.Tests.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Tests.Adapters;

/// <summary>
/// EVA's defining properties on a tiny model: each target's A spans the top right-singular subspace of the inputs it saw
/// (an SVD of the inputs recorded independently), the ranks sum to the budget r × targets and go to the largest
/// explained-variance ratios, and with B = 0 the model starts exactly as loaded.
/// </summary>
public class EvaInitTests
{
    // q, gate and up read the 16-wide hidden state, so with r = 8 and ρ = 2 each target keeps k = 16 components: everything
    // its inputs span, which makes the incremental SVD exact and comparable with one SVD of all inputs stacked.
    private static readonly string[] Targets = ["q_proj", "gate_proj", "up_proj"];
    private const int Rank = 8;

    private static CausalLm Model(WeightFormat weights = WeightFormat.Bf16)
    {
        var spec = TinyModels.Llama();
        var model = new CausalLm(spec, new DecoderOptions { ComputeDType = ScalarType.Float32, LinearFactory = BaseWeights.Factory(weights, false, ScalarType.Float32) });
        model.LoadWeights(TinyModels.RandomCheckpoint(spec, 5));
        return model;
    }

    [Fact]
    public void EachARowSpaceIsTheTopRightSingularSubspaceOfTheInputsAndTheRanksFollowExplainedVariance()
    {
        using var model = Model();
        var batches = new TokenInitBatches(model, count: 6, rows: 2, length: 8, seed: 11);
        var factors = EvaInit.Compute(new DataInitRequest(model, Targets, new LoraOptions(Rank, 16), batches));
        try
        {
            var read = batches.Read.ToList();
            Assert.Equal(Enumerable.Range(0, read.Count), read);   // the first micro-batches, in order, each once
            var inputs = RecordInputs(model, batches, read);
            Assert.Equal(Rank * 6, factors.Values.Sum(f => f.First.shape[0]));   // 2 layers × 3 targets, budget r each

            var taken = new List<double>();
            var left = new List<double>();
            foreach (var (path, x) in inputs)
            {
                var f = factors[path];
                int rank = (int)f.First.shape[0];
                Assert.InRange(rank, 1, 2 * Rank);
                Assert.Equal(0.0, f.Second.abs().max().item<float>());   // B = 0
                var (_, s, vh) = linalg.svd(x.to(ScalarType.Float64), fullMatrices: false);
                var a = f.First.to(ScalarType.Float64);
                // Orthonormal rows spanning span(v₁ … v_rank): the singular values of A·V_topᵀ are all 1.
                using var gram = a.matmul(a.t());
                Assert.True(gram.sub(eye(rank, dtype: ScalarType.Float64)).abs().max().item<double>() < 1e-4, $"{path}: A's rows are not orthonormal");
                using var overlap = linalg.svdvals(a.matmul(vh.narrow(0, 0, rank).t()));
                Assert.True(overlap.min().item<double>() > 1 - 1e-4, $"{path}: A's rows leave the top-{rank} subspace (smallest cosine {overlap.min().item<double>()})");
                var ratios = s.square().div(x.to(ScalarType.Float64).square().sum()).data<double>().ToArray();
                // Every target keeps its first component; the others compete for the rest of the budget.
                taken.AddRange(ratios.Skip(1).Take(rank - 1));
                left.AddRange(ratios.Skip(rank).Take(2 * Rank - rank));
            }
            // No component left out explains more variance than one taken.
            Assert.True(taken.Min() >= left.Max() - 1e-6, $"a left-out ratio {left.Max()} exceeds a taken one {taken.Min()}");
        }
        finally
        {
            foreach (var f in factors.Values) f.Dispose();
        }
    }

    [Theory]
    [InlineData(WeightFormat.Bf16)]
    [InlineData(WeightFormat.Nf4)]
    public void TheModelStartsExactlyAsLoaded(WeightFormat weights)
    {
        using var model = Model(weights);
        using var ids = TinyModels.Ids(new long[,] { { 1, 5, 9, 2, 7, 3 } });
        using var before = model.Hidden(ids).detach().clone();
        var batches = new TokenInitBatches(model, count: 4, rows: 2, length: 8, seed: 3);
        var factors = EvaInit.Compute(new DataInitRequest(model, Targets, new LoraOptions(Rank, 16), batches));
        using (var unchanged = model.Hidden(ids)) Assert.True(unchanged.sub(before).abs().max().item<float>() == 0, "the init changed the model");
        var adapters = ModelAdapters.Attach(model, TrainingMethod.Eva, new LoraOptions(Rank, 16), Targets, seed: 1, initFactors: factors);
        foreach (var f in factors.Values) f.Dispose();
        using var after = model.Hidden(ids);
        Assert.True(after.sub(before).abs().max().item<float>() == 0, "B = 0 must leave the output unchanged");
        // α moves with the rank, so every target keeps the run's s = α/r = 2.
        Assert.All(adapters, a => Assert.Equal(2.0, ((LoraLinear)a.Layer).Options.Scaling, 12));
    }

    // Hand-worked: r = 2, two targets, budget 4. Each keeps its first component; of the rest (a: 0.3, 0.1; b: 0.05, 0.01)
    // the two largest are a's, so a gets 3 and b 1.
    [Fact]
    public void TheBudgetGoesToTheLargestRatiosAfterOneComponentEach()
    {
        var ranks = EvaInit.Distribute(new Dictionary<string, double[]> { ["a"] = [0.5, 0.3, 0.1, 0.05], ["b"] = [0.4, 0.05, 0.01, 0.001] }, ["a", "b"], 2);
        Assert.Equal(3, ranks["a"]);
        Assert.Equal(1, ranks["b"]);
        // b's first component (0.4) is kept although a's third (0.1) is smaller: no target is left without an adapter.
        var even = EvaInit.Distribute(new Dictionary<string, double[]> { ["a"] = [0.4, 0.3], ["b"] = [0.4, 0.3] }, ["a", "b"], 2);
        Assert.Equal(2, even["a"]);
        Assert.Equal(2, even["b"]);
    }

    // The inputs each target's projection receives on the given micro-batches, recorded by a module of this test.
    private static Dictionary<string, Tensor> RecordInputs(CausalLm model, TokenInitBatches batches, List<int> indices)
    {
        var seen = new Dictionary<string, List<Tensor>>();
        var originals = new List<(DecoderLayer Layer, string Name, nn.Module<Tensor, Tensor> Module)>();
        foreach (var layer in model.Layers)
            foreach (var name in Targets)
            {
                bool attention = ModelAdapters.IsAttention(name);
                string path = $"model.layers.{layer.Index}.{(attention ? "self_attn" : "mlp")}.{name}";
                var list = seen[path] = [];
                var inner = attention ? layer.SelfAttn.GetProjection(name) : layer.Mlp.GetProjection(name);
                var recorder = new Recorder(inner, list);
                if (attention) layer.SelfAttn.ReplaceProjection(name, recorder);
                else layer.Mlp.ReplaceProjection(name, recorder);
                originals.Add((layer, name, inner));
            }
        using (no_grad())
            foreach (int i in indices)
                using (var ids = batches.Ids(i))
                    model.Hidden(ids).Dispose();
        foreach (var (layer, name, inner) in originals)
            if (ModelAdapters.IsAttention(name)) layer.SelfAttn.ReplaceProjection(name, inner);
            else layer.Mlp.ReplaceProjection(name, inner);
        return seen.ToDictionary(kv => kv.Key, kv => cat(kv.Value, 0));
    }

    private sealed class Recorder(nn.Module<Tensor, Tensor> inner, List<Tensor> seen) : nn.Module<Tensor, Tensor>("Recorder")
    {
        public override Tensor forward(Tensor x)
        {
            seen.Add(x.detach().reshape(-1, x.shape[^1]).clone().DetachFromDisposeScope());
            return inner.forward(x);
        }
    }
}
