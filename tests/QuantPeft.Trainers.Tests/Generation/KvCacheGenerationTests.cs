using QuantPeft.Memory.Planning;
using QuantPeft.Trainers.Adapters;
using QuantPeft.Trainers.Generation;
using QuantPeft.Trainers.Model;
using QuantPeft.Trainers.Recipes;
using QuantPeft.Trainers.Tests.Model;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Tests.Generation;

/// <summary>
/// Generation with the KV cache against the model run on the whole sequence: the same logits at every position, and the
/// same greedy tokens as re-running the full prefix for each new token (<see cref="GreedyDecoder"/>).
/// </summary>
public class KvCacheGenerationTests
{
    public static TheoryData<bool, AttentionImplementation> Layouts => new()
    {
        { false, AttentionImplementation.Fused }, { true, AttentionImplementation.Fused }, { true, AttentionImplementation.Eager },
    };

    [Theory]
    [MemberData(nameof(Layouts))]
    public void CachedLogitsEqualTheFullForwardAtEveryPosition(bool qwen2, AttentionImplementation attention)
    {
        var spec = TinyModels.Llama(tied: qwen2, bias: qwen2);   // 4 heads over 2 kv heads (grouped), qwen2 with q/k/v biases
        using var model = TinyModels.Build(spec, TinyModels.RandomCheckpoint(spec, 5), attention: attention);
        long[] ids = [1, 7, 3, 9, 30, 2, 2, 15, 4, 11, 0, 31];
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var full = model.forward(tensor(ids, [1, ids.Length]))[0];                        // (T, V)
        using var cache = new KvCache(spec.NumLayers);
        // A prompt of 5 in one call (a causal block on an empty cache), then 3 at once after it (the offset mask), then one at a time.
        var parts = new List<Tensor> { model.Forward(tensor(ids[..5], [1, 5]), cache)[0], model.Forward(tensor(ids[5..8], [1, 3]), cache)[0] };
        for (int i = 8; i < ids.Length; i++) parts.Add(model.Forward(tensor(ids[i..(i + 1)], [1, 1]), cache)[0]);
        var cached = cat(parts, 0);
        Assert.Equal(ids.Length, cache.Length);
        float diff = (cached - full).abs().max().item<float>();
        Assert.True(diff < 1e-4f, $"cached vs full logits differ by {diff}");
    }

    [Theory]
    [InlineData(WeightFormat.Bf16)]
    [InlineData(WeightFormat.Nf4)]
    public void GreedyWithTheCacheEqualsGreedyRecomputingThePrefix(WeightFormat weights)
    {
        using var dir = new TempDir();
        string folder = Recipes.RecipeTests.WriteTinyModel(dir);
        using var loaded = GenerationModel.Load(folder, null, weights, ScalarType.Float32);
        int[] prompt = [256, .. "upper: abcdef => "u8.ToArray().Select(b => (int)b)];
        int[] recomputed = GreedyDecoder.Generate(loaded.Model, [prompt], 32, eos: null, vocabSize: 259)[0];
        using var generator = new TextGenerator(loaded.Model, 259);
        var cached = generator.Generate(prompt, 32, new SamplingOptions(), new HashSet<int>());
        Assert.Equal(recomputed, cached.Tokens);
        Assert.Equal(prompt.Length + 32, generator.Cache.Length);
        // Deterministic: a second run from a fresh cache gives the same tokens.
        generator.Reset();
        Assert.Equal(cached.Tokens, generator.Generate(prompt, 32, new SamplingOptions(), new HashSet<int>()).Tokens);
    }

    [Fact]
    public void GenerationStopsAtAStopIdAndFeedsItToTheCache()
    {
        using var dir = new TempDir();
        string folder = Recipes.RecipeTests.WriteTinyModel(dir);
        using var loaded = GenerationModel.Load(folder, null, WeightFormat.Bf16, ScalarType.Float32);
        int[] prompt = [256, 97, 98];
        using var generator = new TextGenerator(loaded.Model, 259);
        var free = generator.Generate(prompt, 8, new SamplingOptions(), new HashSet<int>());
        generator.Reset();
        int stop = free.Tokens[3];
        var stopped = generator.Generate(prompt, 8, new SamplingOptions(), new HashSet<int> { stop });
        int first = free.Tokens.ToList().IndexOf(stop);
        Assert.Equal(free.Tokens.Take(first), stopped.Tokens);
        Assert.Equal(stop, stopped.StoppedBy);
        Assert.Equal(prompt.Length + first + 1, generator.Cache.Length);
    }
}
