using QuantPeft.Optimizers;
using QuantPeft.Trainers.Model;
using QuantPeft.Trainers.Strategies;
using Parameter = TorchSharp.Modules.Parameter;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Tests.Strategies;

public class LisaScheduleTests
{
    private static Optimizer AdamW(IReadOnlyList<(string Name, Parameter Param)> trainable) =>
        OptimizerFactory.Create("adamw", [new ParamGroup("all", trainable, new ParamGroupOptions(Lr: 1e-2))]);

    private static (LisaSchedule Schedule, CausalLm Model) Lisa(int gamma, int interval, long seed = 9, int layers = 4)
    {
        var model = StrategyTestModels.DenseBf16(StrategyTestModels.Spec(layers));
        FullParameterTraining.Prepare(model);
        return (new LisaSchedule(model, new LisaSampler(layers, gamma, seed), interval, AdamW), model);
    }

    private static Dictionary<string, Tensor> Snapshot(CausalLm model) =>
        model.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().clone().DetachFromDisposeScope());

    [Fact]
    public void WithinAPeriodOnlyTheSampledLayersAndTheAlwaysTrainedParametersChange()
    {
        var (lisa, model) = Lisa(gamma: 1, interval: 3);
        using var _ = model;
        var optimizer = lisa.BeforeStep(0, null);
        var active = lisa.ActiveLayers;
        Assert.Single(active);
        var before = Snapshot(model);
        for (int step = 0; step < 3; step++)
        {
            optimizer = lisa.BeforeStep(step, optimizer);
            Assert.Equal(active, lisa.ActiveLayers);   // same period: same layers, same optimizer
            StrategyTestModels.Backward(model, seed: step);
            optimizer.Step();
            optimizer.ZeroGrad();
        }
        foreach (var (name, p) in model.named_parameters())
        {
            bool inActiveLayer = active.Any(i => name.StartsWith($"model.layers.{i}.", StringComparison.Ordinal));
            bool always = !name.StartsWith("model.layers.", StringComparison.Ordinal);
            bool same = StrategyTestModels.Same(p.detach(), before[name]);
            if (inActiveLayer || always) Assert.False(same, $"{name} should have trained");
            else Assert.True(same, $"{name} is in a frozen layer but changed");
            Assert.Equal(inActiveLayer || always, p.requires_grad);
        }
        // Step 3 opens period 1: the layers are those the sampler draws for it, and only they require grad.
        optimizer = lisa.BeforeStep(3, optimizer);
        Assert.Equal(lisa.Sampler.Draw(1), lisa.ActiveLayers);
        foreach (var layer in model.Layers)
            Assert.All(layer.parameters(), p => Assert.Equal(lisa.ActiveLayers.Contains(layer.Index), p.requires_grad));
        optimizer.Dispose();
        foreach (var t in before.Values) t.Dispose();
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void OptimizerStateAndGradientsFollowGammaAndDoNotGrowAcrossPeriods(int gamma)
    {
        var (lisa, model) = Lisa(gamma, interval: 1);
        using var _ = model;
        Optimizer? optimizer = null;
        // Five periods of one step: with 4 layers and γ < 4 every layer has been active at some point, yet the state
        // stays at γ layers (fp32 m and v: 8 bytes a parameter) and the gradients at γ layers (bf16: 2 bytes).
        var seen = new HashSet<int>();
        for (int step = 0; step < 5; step++)
        {
            optimizer = lisa.BeforeStep(step, optimizer);
            seen.UnionWith(lisa.ActiveLayers);
            long expected = StrategyTestModels.AlwaysParameters + gamma * StrategyTestModels.LayerParameters;
            Assert.Equal(8 * expected, optimizer.StateBytes.Total);
            StrategyTestModels.Backward(model, seed: step);
            long gradBytes = model.parameters().Where(p => p.grad is not null).Sum(p => p.grad!.numel() * p.grad.ElementSize);
            Assert.Equal(2 * expected, gradBytes);
            optimizer.Step();
            optimizer.ZeroGrad();
        }
        Assert.True(seen.Count > gamma, "the draw never changed layers over five periods");
        optimizer!.Dispose();
    }

    [Theory]
    [InlineData(1)]
    [InlineData(4)]
    public void AlwaysTrainedStateCarriesOverASwitchWhileNewLayersStartFromZero(int gamma)
    {
        // A seed whose first two draws differ (γ = 1), so the layer of period 1 is a newly activated one; with
        // γ = 4 every layer stays active and keeps its state.
        long seed = Enumerable.Range(0, 100).First(s => !new LisaSampler(4, 1, s).Draw(0).SequenceEqual(new LisaSampler(4, 1, s).Draw(1)));
        var (lisa, model) = Lisa(gamma, interval: 2, seed: seed);
        using var _ = model;
        Optimizer? optimizer = null;
        for (int step = 0; step < 2; step++)
        {
            optimizer = lisa.BeforeStep(step, optimizer);
            StrategyTestModels.Backward(model, seed: step);
            optimizer.Step();
            optimizer.ZeroGrad();
        }
        var previous = lisa.ActiveLayers;
        using var old = optimizer!.StateDict();
        optimizer = lisa.BeforeStep(2, optimizer);
        using var next = optimizer.StateDict();
        Assert.True(old.TryGetTensor("model.embed_tokens.weight.exp_avg", out var oldM));
        Assert.True(next.TryGetTensor("model.embed_tokens.weight.exp_avg", out var newM));
        Assert.True(StrategyTestModels.Same(newM, oldM));
        Assert.NotEqual(0, newM.count_nonzero().item<long>());
        Assert.Equal(2, next.GetScalar("model.embed_tokens.weight.step"));
        Assert.Equal(2, next.GetScalar("optimizer.step"));
        foreach (int i in lisa.ActiveLayers)
        {
            string layer = $"model.layers.{i}.mlp.down_proj.weight";
            bool stayed = previous.Contains(i);
            Assert.Equal(stayed ? 2 : 0, next.GetScalar($"{layer}.step"));
            Assert.True(next.TryGetTensor($"{layer}.exp_avg", out var layerM));
            Assert.Equal(stayed, layerM.count_nonzero().item<long>() != 0);
        }
        Assert.Equal(gamma == 4, lisa.ActiveLayers.All(previous.Contains));
        optimizer.Dispose();
    }

    [Fact]
    public void TheDrawIsReproducibleFromTheSeedUniformAndWithoutReplacement()
    {
        var a = new LisaSampler(8, 3, seed: 5);
        var b = new LisaSampler(8, 3, seed: 5);
        var other = new LisaSampler(8, 3, seed: 6);
        var drawsA = Enumerable.Range(0, 50).Select(p => a.Draw(p)).ToList();
        Assert.Equal(drawsA, Enumerable.Range(0, 50).Select(p => b.Draw(p)));
        Assert.NotEqual(drawsA, Enumerable.Range(0, 50).Select(p => other.Draw(p)));
        Assert.All(drawsA, d =>
        {
            Assert.Equal(3, d.Distinct().Count());
            Assert.Equal(d.Order(), d);
            Assert.All(d, i => Assert.InRange(i, 0, 7));
        });
        // Uniform: over 8000 draws each of the 8 layers is picked with probability 3/8 (expected 3000, σ ≈ 43).
        var counts = new int[8];
        for (int p = 0; p < 8000; p++)
            foreach (int i in a.Draw(p)) counts[i]++;
        Assert.All(counts, c => Assert.InRange(c, 2700, 3300));
    }

    [Fact]
    public void TwoSchedulesWithTheSameSeedTrainTheSameLayersToTheSameWeights()
    {
        var (first, m1) = Lisa(gamma: 2, interval: 2, seed: 21);
        var (second, m2) = Lisa(gamma: 2, interval: 2, seed: 21);
        using var _1 = m1;
        using var _2 = m2;
        Optimizer? o1 = null, o2 = null;
        for (int step = 0; step < 6; step++)
        {
            o1 = first.BeforeStep(step, o1);
            o2 = second.BeforeStep(step, o2);
            Assert.Equal(first.ActiveLayers, second.ActiveLayers);
            StrategyTestModels.Backward(m1, seed: step);
            StrategyTestModels.Backward(m2, seed: step);
            o1.Step(); o1.ZeroGrad();
            o2.Step(); o2.ZeroGrad();
        }
        var p2 = m2.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        Assert.All(m1.named_parameters(), p => Assert.True(StrategyTestModels.Same(p.parameter, p2[p.name]), p.name));
        o1!.Dispose();
        o2!.Dispose();
    }

    [Theory]
    [InlineData(0, "--lisa-layers: expected at least 1 sampled layer, found 0")]
    [InlineData(5, "--lisa-layers: 5 exceeds the model's 4 decoder layers (num_hidden_layers); expected 1..4")]
    public void GammaOutsideOneToTheLayerCountIsAnErrorNamingTheFlag(int gamma, string message)
    {
        var e = Assert.Throws<StrategyException>(() => new LisaSampler(4, gamma, seed: 1));
        Assert.Equal(message, e.Message);
    }
}
