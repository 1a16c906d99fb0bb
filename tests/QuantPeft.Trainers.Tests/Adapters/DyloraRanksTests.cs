using QuantPeft.Trainers.Adapters;

namespace QuantPeft.Trainers.Tests.Adapters;

/// <summary>DyLoRA's p_B: uniform on {1, …, r}, a function of (seed, step) alone, so a resumed run draws what an uninterrupted one does.</summary>
public class DyloraRanksTests
{
    [Fact]
    public void EveryRankFromOneToRIsDrawnAboutEquallyOften()
    {
        const int r = 8, steps = 80_000;
        var counts = new int[r + 1];
        for (int step = 0; step < steps; step++) counts[DyloraRanks.Sample(seed: 42, step, r)]++;
        Assert.Equal(0, counts[0]);
        // Each count is Binomial(80000, 1/8): mean 10000, standard deviation 94; 5 % is more than 5 standard deviations.
        for (int b = 1; b <= r; b++) Assert.InRange(counts[b], 9500, 10500);
        // Pearson's χ² with 7 degrees of freedom stays under its 0.1 % critical value 24.3.
        double chi2 = Enumerable.Range(1, r).Sum(b => Math.Pow(counts[b] - steps / (double)r, 2) / (steps / (double)r));
        Assert.True(chi2 < 24.3, $"χ² = {chi2}");
    }

    [Fact]
    public void TheDrawIsAFunctionOfSeedAndStepOnly()
    {
        int[] first = [.. Enumerable.Range(0, 200).Select(s => DyloraRanks.Sample(7, s, 16))];
        int[] again = [.. Enumerable.Range(0, 200).Select(s => DyloraRanks.Sample(7, s, 16))];
        int[] resumed = [.. first.Take(120), .. Enumerable.Range(120, 80).Select(s => DyloraRanks.Sample(7, s, 16))];
        int[] other = [.. Enumerable.Range(0, 200).Select(s => DyloraRanks.Sample(8, s, 16))];
        Assert.Equal(first, again);
        Assert.Equal(first, resumed);
        Assert.NotEqual(first, other);
        Assert.All(Enumerable.Range(0, 50), s => Assert.Equal(1, DyloraRanks.Sample(3, s, 1)));
        Assert.Throws<ArgumentOutOfRangeException>(() => DyloraRanks.Sample(1, 0, 0));
    }
}
