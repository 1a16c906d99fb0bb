using QuantPeft.Formats.HuggingFace;
using QuantPeft.Trainers.Model;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Tests.Model;

/// <summary>Phi-3's fused projections, partial rotary and longrope, each against values worked out by hand on tiny shapes.</summary>
public class PhiOperationTests
{
    private static void Set(nn.Module<Tensor, Tensor> linear, float[,] weight)
    {
        using (no_grad()) ((Linear)linear).weight!.copy_(tensor(weight));
    }

    [Fact]
    public void FusedGateUp_FirstHalfIsTheGate()
    {
        // gate_up rows: gate (1, 0), up (0, 2); down (1, 3)ᵀ. x = (2, 0.5): gate 2, up 1 → silu(2)·1 = 2/(1 + e⁻²) = 1.7615942;
        // out = (1.7615942, 5.2847825). With the halves swapped it would be silu(1)·2 = 1.4621172.
        using var mlp = new Mlp("model.layers.0.mlp", 2, 1, LinearFactories.Plain(ScalarType.Float32), fusedGateUp: true);
        Set(mlp.GetProjection("gate_up_proj"), new float[,] { { 1, 0 }, { 0, 2 } });
        Set(mlp.GetProjection("down_proj"), new float[,] { { 1 }, { 3 } });
        using var x = tensor(new float[] { 2f, 0.5f }).reshape(1, 1, 2);
        using var y = mlp.call(x);
        var v = y.data<float>().ToArray();
        Assert.Equal(1.7615942f, v[0], 5);
        Assert.Equal(5.2847825f, v[1], 5);
        Assert.Equal(["gate_up_proj", "down_proj"], mlp.named_children().Select(c => c.name));
    }

    [Fact]
    public void FusedQkv_RowsAreQThenKThenV()
    {
        // One head of 2, no rotation (cos 1, sin 0), o_proj the identity. qkv rows: Wq = [[1,1],[0,1]], Wk = [[2,0],[0,−1]],
        // Wv = [[0,3],[5,0]]. Tokens x0 = (1,0), x1 = (0,1): v0 = (0,5), v1 = (3,0); q1 = (1,1), k0 = (2,0), k1 = (0,−1).
        // Token 1 scores (2, −1)/√2 → softmax (0.8929582, 0.1070418) → out (0.3211254, 4.4647910); token 0 sees only v0.
        // Swapping q and k would give scores (0, −1)/√2 instead.
        using var attention = new SelfAttention("model.layers.0.self_attn", 2, 1, 1, 2, false, false, LinearFactories.Plain(ScalarType.Float32),
            fusedQkv: true);
        Set(attention.GetProjection("qkv_proj"), new float[,] { { 1, 1 }, { 0, 1 }, { 2, 0 }, { 0, -1 }, { 0, 3 }, { 5, 0 } });
        Set(attention.GetProjection("o_proj"), new float[,] { { 1, 0 }, { 0, 1 } });
        using var x = tensor(new float[] { 1, 0, 0, 1 }).reshape(1, 2, 2);
        using var cos = ones(2, 2);
        using var sin = zeros(2, 2);
        foreach (var kind in (AttentionImplementation[])[AttentionImplementation.Fused, AttentionImplementation.Eager])
        {
            attention.Implementation = kind;
            using var y = attention.call(x, cos, sin);
            var v = y.data<float>().ToArray();
            Assert.Equal(0f, v[0], 5);
            Assert.Equal(5f, v[1], 5);
            Assert.Equal(0.3211254f, v[2], 5);
            Assert.Equal(4.4647910f, v[3], 5);
        }
        Assert.Equal(["qkv_proj", "o_proj"], attention.named_children().Select(c => c.name));
        Assert.Throws<ArgumentException>(() => attention.GetProjection("q_proj"));
    }

    [Fact]
    public void PartialRotary_RotatesOnlyTheLeadingDimensions()
    {
        // Head of 4 with 2 rotated dims at angle π/2 (cos 0, sin 1): (x0, x1) → (x0·0 − x1·1, x1·0 + x0·1) = (−2, 1); (3, 4) pass.
        using var x = tensor(new float[] { 1, 2, 3, 4 }).reshape(1, 1, 1, 4);
        using var cos = zeros(1, 2);
        using var sin = ones(1, 2);
        using var y = RotaryEmbedding.Apply(x, cos, sin);
        Assert.Equal(new float[] { -2, 1, 3, 4 }, y.data<float>().ToArray());
    }

    private static ModelSpec Phi(double partial, RopeScaling? scaling, int maxPositions = 64) => new()
    {
        ModelType = "phi3", NumLayers = 1, HiddenSize = 16, IntermediateSize = 8, NumHeads = 2, NumKvHeads = 2, VocabSize = 300,
        RopeTheta = 100.0, PartialRotaryFactor = partial, RopeScaling = scaling, MaxPositionEmbeddings = maxPositions,
    };

    [Fact]
    public void PartialRotary_FrequenciesCoverTheRotatedDimensionsOnly()
    {
        // head_dim 8, factor 0.5 → 4 rotated dims → θ^(−0/4), θ^(−2/4) with θ = 100: (1, 0.1).
        var inv = RotaryEmbedding.InverseFrequencies(Phi(0.5, null));
        Assert.Equal(2, inv.Length);
        Assert.Equal(1f, inv[0]);
        Assert.Equal(0.1f, inv[1], 7);
    }

    [Fact]
    public void Longrope_DividesEachFrequencyByItsFactor_AndScalesCosSin()
    {
        // Base (1, 0.1) as above; short factors (2, 4) → (0.5, 0.025); long factors (8, 16) → (0.125, 0.00625).
        // Context 64 over an original 8: s = 8, attention factor √(1 + ln 8 / ln 8) = √2.
        var rope = new RopeScaling("longrope", 8.0, OriginalMaxPositionEmbeddings: 8) { ShortFactor = [2.0, 4.0], LongFactor = [8.0, 16.0] };
        var spec = Phi(0.5, rope);
        var shortInv = RotaryEmbedding.InverseFrequencies(spec);
        var longInv = RotaryEmbedding.InverseFrequencies(spec, longContext: true);
        Assert.Equal([0.5f, 0.025f], shortInv);
        Assert.Equal([0.125f, 0.00625f], longInv);
        Assert.Equal(Math.Sqrt(2), rope.CosSinScale, 12);
        // A factor of at most 1 leaves cos/sin alone; an explicit attention_factor wins.
        Assert.Equal(1.0, (rope with { Factor = 1.0 }).CosSinScale);
        Assert.Equal(0.5, (rope with { AttentionFactor = 0.5 }).CosSinScale);
        // Position 1 of the short table: cos(0.5)·√2 = 1.2410939, sin(0.025)·√2 = 0.0353517.
        var (cos, sin) = RotaryEmbedding.CosSin(shortInv, 2, ScalarType.Float32, CPU, rope.CosSinScale);
        using (cos)
        using (sin)
        {
            Assert.Equal(Math.Sqrt(2), cos[0, 0].item<float>(), 5);
            Assert.Equal(1.2410939f, cos[1, 0].item<float>(), 5);
            Assert.Equal(1.2410939f, cos[1, 2].item<float>(), 5);
            Assert.Equal(0.0353517f, sin[1, 1].item<float>(), 6);
        }
    }

    [Fact]
    public void Longrope_CachedTokensCrossingTheOriginalContext_AreRefused()
    {
        // transformers drops such a cache and re-runs the prompt; a cache rotated with the short factors cannot be reused.
        var rope = new RopeScaling("longrope", 8.0, OriginalMaxPositionEmbeddings: 8) { ShortFactor = [1.0, 1.0], LongFactor = [2.0, 2.0] };
        using var model = new CausalLm(Phi(0.5, rope), new DecoderOptions { ComputeDType = ScalarType.Float32 });
        var cache = new KvCache(model.Layers.Count);
        using (no_grad())
        {
            using var first = model.Forward(tensor(new long[] { 1, 2, 3, 4, 5, 6 }).unsqueeze(0), cache);
            var e = Assert.Throws<ModelException>(() => model.Forward(tensor(new long[] { 7, 8, 9 }).unsqueeze(0), cache));
            Assert.Contains("original_max_position_embeddings 8", e.Message);
        }
    }
}
