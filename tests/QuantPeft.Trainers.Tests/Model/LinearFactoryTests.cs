using QuantPeft.Trainers.Model;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Tests.Model;

public class LinearFactoryTests
{
    [Fact]
    public void Factory_IsAskedForEveryProjection_WithHfNameAndSizes()
    {
        var spec = TinyModels.Llama(bias: true);
        var calls = new List<(string Name, long In, long Out, bool Bias)>();
        var plain = LinearFactories.Plain(ScalarType.Float32);
        using var model = new CausalLm(spec, new DecoderOptions
        {
            ComputeDType = ScalarType.Float32,
            LinearFactory = (name, i, o, b) => { calls.Add((name, i, o, b)); return plain(name, i, o, b); },
        });
        // head_dim 4: q 16→16, k/v 16→8 (2 kv heads), o 16→16, gate/up 16→24, down 24→16.
        Assert.Equal(14, calls.Count);
        Assert.Contains(("model.layers.0.self_attn.q_proj", 16L, 16L, true), calls);
        Assert.Contains(("model.layers.1.self_attn.k_proj", 16L, 8L, true), calls);
        Assert.Contains(("model.layers.1.self_attn.v_proj", 16L, 8L, true), calls);
        Assert.Contains(("model.layers.0.self_attn.o_proj", 16L, 16L, false), calls);
        Assert.Contains(("model.layers.1.mlp.gate_proj", 16L, 24L, false), calls);
        Assert.Contains(("model.layers.0.mlp.down_proj", 24L, 16L, false), calls);
    }

    [Fact]
    public void CustomModule_ReceivesItsCheckpointTensorsThroughTheLoadTarget()
    {
        var spec = TinyModels.Llama();
        var checkpoint = TinyModels.RandomCheckpoint(spec, 9);
        var custom = new Dictionary<string, RecordingLinear>();
        var plain = LinearFactories.Plain(ScalarType.Float32);
        var options = new DecoderOptions
        {
            ComputeDType = ScalarType.Float32,
            LinearFactory = (name, i, o, b) => name.EndsWith("mlp.up_proj", StringComparison.Ordinal)
                ? custom[name] = new RecordingLinear(i, o)
                : plain(name, i, o, b),
        };
        using var model = new CausalLm(spec, options);
        model.LoadWeights(checkpoint);
        using var reference = TinyModels.Build(spec, checkpoint);

        Assert.Equal(2, custom.Count);
        Assert.All(custom.Values, m => Assert.Equal(["weight"], m.Received));
        using var ids = TinyModels.Ids(new long[,] { { 1, 2, 3 } });
        using var a = model.call(ids);
        using var b = reference.call(ids);
        Assert.True(a.allclose(b, rtol: 0, atol: 1e-6));
    }

    [Fact]
    public void ReplaceProjection_KeepsTheHfNameAndChangesTheOutput()
    {
        var spec = TinyModels.Llama();
        var checkpoint = TinyModels.RandomCheckpoint(spec, 9);
        using var model = TinyModels.Build(spec, checkpoint);
        using var ids = TinyModels.Ids(new long[,] { { 1, 2, 3 } });
        using var before = model.call(ids);
        var namesBefore = model.named_parameters().Select(p => p.name).ToList();

        var old = model.Layers[1].Mlp.ReplaceProjection("down_proj", new ScaledLinear(model.Layers[1].Mlp.GetProjection("down_proj"), 0));
        var namesAfter = model.named_parameters().Select(p => p.name).ToList();
        Assert.Contains("model.layers.1.mlp.down_proj.inner.weight", namesAfter);
        Assert.DoesNotContain("model.layers.1.mlp.down_proj.weight", namesAfter);
        Assert.Equal(namesBefore.Count, namesAfter.Count);
        Assert.Equal(namesBefore.IndexOf("model.layers.1.mlp.down_proj.weight"), namesAfter.IndexOf("model.layers.1.mlp.down_proj.inner.weight"));

        using var after = model.call(ids);
        Assert.False(before.allclose(after));
        model.Layers[1].Mlp.ReplaceProjection("down_proj", old);
        using var restored = model.call(ids);
        Assert.True(before.eq(restored).all().item<bool>());
    }

    /// <summary>A linear that keeps its weight in a plain field and takes it from the loader itself.</summary>
    private sealed class RecordingLinear : nn.Module<Tensor, Tensor>, ITensorLoadTarget
    {
        private readonly Tensor _w;

        public RecordingLinear(long inFeatures, long outFeatures) : base(nameof(RecordingLinear)) =>
            _w = zeros(outFeatures, inFeatures);

        public List<string> Received { get; } = new();

        public void LoadTensor(string localName, Tensor value)
        {
            Received.Add(localName);
            _w.copy_(value);
        }

        public override Tensor forward(Tensor x) => nn.functional.linear(x, _w);
    }

    private sealed class ScaledLinear : nn.Module<Tensor, Tensor>
    {
        private readonly nn.Module<Tensor, Tensor> inner;
        private readonly double _scale;

        public ScaledLinear(nn.Module<Tensor, Tensor> wrapped, double scale) : base(nameof(ScaledLinear))
        {
            inner = wrapped;
            _scale = scale;
            RegisterComponents();
        }

        public override Tensor forward(Tensor x)
        {
            using var y = inner.call(x);
            return y * _scale;
        }
    }
}
