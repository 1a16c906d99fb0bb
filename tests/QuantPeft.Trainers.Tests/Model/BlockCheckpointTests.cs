using QuantPeft.Formats.HuggingFace;
using QuantPeft.Trainers.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Tests.Model;

public class BlockCheckpointTests
{
    private static readonly long[,] Batch = { { 3, 17, 0, 31, 9, 2, 2 }, { 5, 5, 22, 1, 30, 11, 7 } };

    /// <summary>Runs forward + backward of Σ hidden·probe and returns each parameter's gradient by name (null when none).</summary>
    internal static Dictionary<string, float[]?> Gradients(CausalLm model, Tensor ids, bool checkpoint)
    {
        model.GradientCheckpointing = checkpoint;
        model.zero_grad();
        using (var scope = NewDisposeScope())
        {
            var hidden = model.Hidden(ids);
            var probe = linspace(-1, 1, hidden.numel(), dtype: ScalarType.Float32).reshape(hidden.shape).to_type(hidden.dtype);
            var logits = nn.functional.linear(hidden, model.LmHeadWeight);
            (hidden * probe).sum().add(logits.pow(2).mean()).backward();
        }
        return model.named_parameters().ToDictionary(p => p.name,
            p => p.parameter.grad is { } g ? g.to_type(ScalarType.Float32).data<float>().ToArray() : null);
    }

    [Theory]
    [InlineData(false, AttentionImplementation.Fused)]
    [InlineData(true, AttentionImplementation.Eager)]
    public void Float32Gradients_AreIdenticalWithAndWithoutCheckpointing(bool tied, AttentionImplementation attention)
    {
        var spec = TinyModels.Llama(tied, bias: true);
        using var model = TinyModels.Build(spec, TinyModels.RandomCheckpoint(spec, 13), ScalarType.Float32, attention);
        using var ids = TinyModels.Ids(Batch);
        var plain = Gradients(model, ids, checkpoint: false);
        var recomputed = Gradients(model, ids, checkpoint: true);
        Assert.Equal(plain.Keys, recomputed.Keys);
        foreach (var (name, g) in plain)
        {
            Assert.NotNull(g);
            Assert.True(g!.Any(v => v != 0), $"{name} received no gradient");
            Assert.Equal(g, recomputed[name]);
        }
    }

    [Fact]
    public void Bf16Gradients_AgreeWithinBf16Rounding()
    {
        var spec = TinyModels.Llama();
        using var model = TinyModels.Build(spec, TinyModels.RandomCheckpoint(spec, 14), ScalarType.BFloat16);
        using var ids = TinyModels.Ids(Batch);
        var plain = Gradients(model, ids, checkpoint: false);
        var recomputed = Gradients(model, ids, checkpoint: true);
        foreach (var (name, g) in plain)
        {
            var r = recomputed[name]!;
            double scale = g!.Max(v => Math.Abs(v));
            double diff = g!.Zip(r, (a, b) => Math.Abs(a - b)).Max();
            Assert.True(diff <= scale / 128, $"{name}: max diff {diff} vs max |grad| {scale}");   // 2⁻⁷: one bf16 ulp at the largest value
        }
    }

    [Fact]
    public void FrozenEmbeddingAndFrozenProjections_StillGetBlockGradientsThroughTheCheckpoint()
    {
        // With a frozen embedding the first block's input does not require grad (the LoRA situation):
        // the checkpoint must still take part in backward because it lists the trainable parameters as inputs.
        var spec = TinyModels.Llama();
        using var model = TinyModels.Build(spec, TinyModels.RandomCheckpoint(spec, 15));
        var frozen = new HashSet<string> { "model.embed_tokens.weight", "lm_head.weight", "model.layers.0.self_attn.q_proj.weight" };
        foreach (var (name, p) in model.named_parameters())
            p.requires_grad = !frozen.Contains(name);
        using var ids = TinyModels.Ids(Batch);
        var plain = Gradients(model, ids, checkpoint: false);
        var recomputed = Gradients(model, ids, checkpoint: true);
        foreach (var (name, g) in plain)
        {
            if (frozen.Contains(name))
            {
                Assert.Null(g);
                Assert.Null(recomputed[name]);
            }
            else
            {
                Assert.NotNull(recomputed[name]);
                Assert.Equal(g, recomputed[name]);
            }
        }
    }

    [Fact]
    public void WithoutGrad_CheckpointingIsBypassed()
    {
        var spec = TinyModels.Llama();
        using var model = TinyModels.Build(spec, TinyModels.RandomCheckpoint(spec, 16));
        using var ids = TinyModels.Ids(Batch);
        model.GradientCheckpointing = true;
        using var withGrad = model.Hidden(ids);
        Assert.True(withGrad.requires_grad);
        using (no_grad())
        {
            using var inference = model.Hidden(ids);
            Assert.False(inference.requires_grad);
            Assert.True(inference.eq(withGrad.detach()).all().item<bool>());
        }
    }
}
