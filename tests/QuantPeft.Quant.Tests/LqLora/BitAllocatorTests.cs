using QuantPeft.Quant.LqLora;
using QuantPeft.Quant.Torch;

namespace QuantPeft.Quant.Tests.LqLora;

public class BitAllocatorTests
{
    private static List<MatrixCandidates> RandomInstance(Random rng, int matrices, int configs)
    {
        var space = LqQuantConfig.SearchSpace;
        var result = new List<MatrixCandidates>();
        for (int i = 0; i < matrices; i++)
        {
            long numel = LqQuantConfig.GroupElements * (long)rng.Next(1, 5);
            var candidates = Enumerable.Range(0, configs)
                .Select(_ => space[rng.Next(space.Count)])
                .Distinct()
                .Select(c => (c, rng.NextDouble() * 100 / c.BitsPerParameter))
                .ToList();
            result.Add(new MatrixCandidates($"m{i}", numel, candidates));
        }
        return result;
    }

    // Exhaustive search: the independent truth for small instances.
    private static double BruteForce(IReadOnlyList<MatrixCandidates> ms, double budget)
    {
        long total = ms.Sum(m => m.NumElements);
        double best = double.PositiveInfinity;
        var pick = new int[ms.Count];
        while (true)
        {
            double bits = 0, cost = 0;
            for (int i = 0; i < ms.Count; i++)
            {
                bits += (double)ms[i].Candidates[pick[i]].Config.BitsPerGroup * ms[i].NumElements;
                cost += ms[i].Candidates[pick[i]].Cost;
            }
            if (bits <= budget * LqQuantConfig.GroupElements * total) best = Math.Min(best, cost);
            int k = 0;
            while (k < ms.Count && ++pick[k] == ms[k].Candidates.Count) pick[k++] = 0;
            if (k == ms.Count) return best;
        }
    }

    [Fact]
    public void Allocation_IsOptimal_AgainstBruteForce()
    {
        var rng = new Random(12);
        for (int trial = 0; trial < 40; trial++)
        {
            var ms = RandomInstance(rng, rng.Next(2, 5), rng.Next(3, 7));
            double min = ms.Sum(m => m.Candidates.Min(c => c.Config.BitsPerParameter) * m.NumElements) / ms.Sum(m => m.NumElements);
            double budget = Math.Round(min + rng.NextDouble() * 3, 3);
            var result = BitAllocator.Allocate(ms, budget, maxCells: 1 << 18);
            Assert.True(result.IsExact);
            Assert.Equal(BruteForce(ms, budget), result.TotalCost, 9);
            Assert.True(result.AverageBitsPerParameter <= budget + 1e-12);
        }
    }

    [Fact]
    public void Allocation_NeverExceedsTheBudget_EvenWithACoarseStorageAxis()
    {
        var rng = new Random(34);
        int coarseSolved = 0;
        for (int trial = 0; trial < 60; trial++)
        {
            var ms = RandomInstance(rng, rng.Next(1, 8), rng.Next(2, 10));
            long total = ms.Sum(m => m.NumElements);
            double min = ms.Sum(m => m.Candidates.Min(c => c.Config.BitsPerParameter) * m.NumElements) / total;
            double max = ms.Sum(m => m.Candidates.Max(c => c.Config.BitsPerParameter) * m.NumElements) / total;
            double budget = min + (max - min) * rng.NextDouble();
            foreach (int cells in new[] { 40, 1000, BitAllocator.DefaultMaxCells })
            {
                BitAllocation result;
                try { result = BitAllocator.Allocate(ms, budget, cells); }
                catch (QuantInputException) when (cells < BitAllocator.DefaultMaxCells) { continue; } // rounding up may leave no fit
                if (!result.IsExact) coarseSolved++;
                decimal used = 0;
                for (int i = 0; i < ms.Count; i++) used += (decimal)result.Choices[i].BitsPerGroup * ms[i].NumElements;
                Assert.True(used <= (decimal)budget * LqQuantConfig.GroupElements * total,
                    $"trial {trial}, cells {cells}: {used} > budget");
            }
        }
        Assert.True(coarseSolved > 10, $"only {coarseSolved} coarse solutions were checked");
    }

    [Fact]
    public void BudgetBelowTheSmallestConfiguration_IsAnErrorNamingTheBudget()
    {
        var c = LqQuantConfig.Nf4DoubleQuant;
        var ms = new List<MatrixCandidates> { new("q_proj", LqQuantConfig.GroupElements, [(c, 1.0)]) };
        var e = Assert.Throws<QuantInputException>(() => BitAllocator.Allocate(ms, 3.5));
        Assert.Contains("3.5", e.Message);
        Assert.Contains("4.12", e.Message);
    }
}
