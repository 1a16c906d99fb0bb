using QuantPeft.Trainers.Generation;

namespace QuantPeft.Trainers.Tests.Generation;

/// <summary>The sampler against hand-worked cases and the distributions it must draw from.</summary>
public class TokenSamplerTests
{
    [Fact]
    public void TemperatureZeroIsTheArgMaxAndTopKOneIsGreedyAtAnyTemperature()
    {
        float[] logits = [0.1f, 2.5f, -1f, 2.4f];
        Assert.Equal(1, new TokenSampler(new SamplingOptions()).Next([.. logits], []));
        var sampler = new TokenSampler(new SamplingOptions(Temperature: 5, TopK: 1, Seed: 9));
        for (int i = 0; i < 50; i++) Assert.Equal(1, sampler.Next([.. logits], []));
    }

    [Fact]
    public void RepetitionPenaltyDividesPositiveAndMultipliesNegativeLogitsOfSeenTokens()
    {
        // Greedy after the penalty: token 1 (2.5 → 2.5/2 = 1.25) falls below token 3 (2.4, unseen).
        float[] logits = [0.1f, 2.5f, -1f, 2.4f];
        Assert.Equal(3, new TokenSampler(new SamplingOptions(RepetitionPenalty: 2)).Next(logits, [1, 2]));
        Assert.Equal(1.25f, logits[1]);
        Assert.Equal(-2f, logits[2]);
    }

    [Fact]
    public void SamplingFollowsTheSoftmaxAndTheSameSeedRepeats()
    {
        // Temperature 1 over logits ln(1), ln(2), ln(7): probabilities 0.1, 0.2, 0.7.
        float[] logits = [0f, MathF.Log(2), MathF.Log(7)];
        var sampler = new TokenSampler(new SamplingOptions(Temperature: 1, Seed: 1));
        var counts = new int[3];
        const int n = 20000;
        for (int i = 0; i < n; i++) counts[sampler.Next([.. logits], [])]++;
        // Binomial standard deviations at n = 20000 are at most 0.0033; 5σ bounds.
        Assert.InRange(counts[0] / (double)n, 0.1 - 0.016, 0.1 + 0.016);
        Assert.InRange(counts[2] / (double)n, 0.7 - 0.016, 0.7 + 0.016);
        var a = new TokenSampler(new SamplingOptions(Temperature: 1, Seed: 4));
        var b = new TokenSampler(new SamplingOptions(Temperature: 1, Seed: 4));
        Assert.Equal(Enumerable.Range(0, 100).Select(_ => a.Next([.. logits], [])), Enumerable.Range(0, 100).Select(_ => b.Next([.. logits], [])));
    }

    [Fact]
    public void TopPKeepsTheSmallestSetReachingP()
    {
        // Probabilities 0.1, 0.2, 0.7: top-p 0.75 keeps {2, 1} (0.7 < 0.75 ≤ 0.9), so token 0 never appears; top-p 0.5 keeps {2}.
        float[] logits = [0f, MathF.Log(2), MathF.Log(7)];
        var wide = new TokenSampler(new SamplingOptions(Temperature: 1, TopP: 0.75, Seed: 2));
        var seen = Enumerable.Range(0, 2000).Select(_ => wide.Next([.. logits], [])).ToHashSet();
        Assert.Equal(new HashSet<int> { 1, 2 }, seen);
        var narrow = new TokenSampler(new SamplingOptions(Temperature: 1, TopP: 0.5, Seed: 2));
        Assert.All(Enumerable.Range(0, 200), _ => Assert.Equal(2, narrow.Next([.. logits], [])));
    }

    [Theory]
    [InlineData(-1, 0, 1, 1, "--temperature")]
    [InlineData(1, -2, 1, 1, "--top-k")]
    [InlineData(1, 0, 0, 1, "--top-p")]
    [InlineData(1, 0, 1.5, 1, "--top-p")]
    [InlineData(1, 0, 1, 0, "--repetition-penalty")]
    public void OutOfRangeOptionsNameTheirFlag(double t, int k, double p, double r, string flag)
    {
        var e = Assert.Throws<ArgumentException>(() => new SamplingOptions(t, k, p, r).Validate());
        Assert.StartsWith(flag, e.Message);
    }
}
