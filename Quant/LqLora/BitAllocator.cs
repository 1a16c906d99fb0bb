using System.Numerics;
using QuantPeft.Quant.Torch;

namespace QuantPeft.Quant.LqLora;

/// <summary>One matrix to allocate: its size and the cost (reconstruction error) of each candidate config.</summary>
/// <param name="Name">The matrix name (for reports and errors).</param>
/// <param name="NumElements">Weights in the matrix.</param>
/// <param name="Candidates">Candidate configurations with their costs (lower is better).</param>
public sealed record MatrixCandidates(string Name, long NumElements, IReadOnlyList<(LqQuantConfig Config, double Cost)> Candidates);

/// <summary>The allocator's answer: one configuration per matrix.</summary>
/// <param name="Choices">The chosen configuration per matrix, in input order.</param>
/// <param name="TotalCost">Σ cost of the chosen configurations.</param>
/// <param name="TotalBits">Σ bits(c)·numel of the chosen configurations (exact).</param>
/// <param name="AverageBitsPerParameter">TotalBits / Σ numel.</param>
/// <param name="IsExact">True when the storage unit divided every item's storage, so the optimum is exact;
/// false when storages were rounded up to a coarser unit (still within budget, possibly not optimal).</param>
public sealed record BitAllocation(
    IReadOnlyList<LqQuantConfig> Choices, double TotalCost, double TotalBits, double AverageBitsPerParameter, bool IsExact);

/// <summary>
/// LQ-LoRA's budgeted configuration assignment, solved as a multiple-choice knapsack by dynamic programming
/// over a discretised storage axis (instead of the reference's MILP solver).
/// </summary>
/// <remarks>
/// <para>Storage is counted in units of 1/16384 bit per weight: the storage of config c on matrix i is
/// <c>w_ic = BitsPerGroup(c) · numel_i</c>, an integer (<see cref="LqQuantConfig.BitsPerGroup"/>), and the
/// capacity is <c>⌊budget · 16384 · Σ numel⌋</c>. Since every w_ic is an integer, Σ w ≤ budget·16384·Σnumel
/// exactly when Σ w ≤ capacity.</para>
/// <para>The DP axis counts multiples of a unit u. With u = gcd of all w_ic the items are exact multiples and
/// the DP optimum is the true optimum. When capacity/u exceeds <c>maxCells</c>, u is enlarged and each storage
/// is rounded up: <c>⌈w/u⌉</c>. A DP solution then satisfies Σ w ≤ Σ ⌈w/u⌉·u ≤ ⌊capacity/u⌋·u ≤ capacity, so
/// the budget still holds; only optimality may be lost (reported by <see cref="BitAllocation.IsExact"/>).</para>
/// </remarks>
public static class BitAllocator
{
    /// <summary>Default bound on DP cells per matrix (memory: matrices × cells × 2 bytes of choices).</summary>
    public const int DefaultMaxCells = 1 << 16;

    /// <summary>Chooses one configuration per matrix minimising Σ cost subject to average bits ≤ budget.</summary>
    /// <exception cref="QuantInputException">No matrices, a matrix without candidates, a budget below the
    /// smallest configuration, or a budget the discretisation cannot meet.</exception>
    public static BitAllocation Allocate(
        IReadOnlyList<MatrixCandidates> matrices, double budgetBitsPerParameter, int maxCells = DefaultMaxCells)
    {
        if (matrices.Count == 0) throw new QuantInputException("bit budget: no matrices to allocate.");
        foreach (var m in matrices)
            if (m.Candidates.Count == 0 || m.NumElements <= 0)
                throw new QuantInputException($"'{m.Name}': needs at least one candidate config and a positive size.");

        long totalElements = matrices.Sum(m => m.NumElements);
        decimal capacityExact = (decimal)budgetBitsPerParameter * LqQuantConfig.GroupElements * totalElements;
        long capacity = (long)Math.Floor(capacityExact);
        long[][] weights = [.. matrices.Select(m => m.Candidates.Select(c => c.Config.BitsPerGroup * m.NumElements).ToArray())];
        long minimum = weights.Sum(w => w.Min());
        if (minimum > capacity)
            throw new QuantInputException(
                $"bit budget {budgetBitsPerParameter} bits/param is below the smallest configuration, which needs " +
                $"{(double)minimum / LqQuantConfig.GroupElements / totalElements:F4} bits/param.");

        long unit = 0;
        foreach (var row in weights) foreach (long w in row) unit = (long)BigInteger.GreatestCommonDivisor(unit, w);
        bool exact = true;
        if (capacity / unit > maxCells)
        {
            unit = (capacity + maxCells - 1) / maxCells;
            exact = false;
        }
        int cells = (int)(capacity / unit);
        var units = weights.Select(row => row.Select(w => (int)Math.Min(int.MaxValue, (w + unit - 1) / unit)).ToArray()).ToArray();

        // best[j] = least cost of the matrices so far using at most j units; choice[i][j] = candidate index.
        var best = new double[cells + 1];
        var next = new double[cells + 1];
        var choice = new short[matrices.Count][];
        for (int i = 0; i < matrices.Count; i++)
        {
            var costs = matrices[i].Candidates;
            choice[i] = new short[cells + 1];
            for (int j = 0; j <= cells; j++)
            {
                double bestHere = double.PositiveInfinity;
                short pick = -1;
                for (int c = 0; c < costs.Count; c++)
                {
                    int u = units[i][c];
                    if (u > j) continue;
                    double value = best[j - u] + costs[c].Cost;
                    if (value < bestHere) { bestHere = value; pick = (short)c; }
                }
                next[j] = bestHere;
                choice[i][j] = pick;
            }
            (best, next) = (next, best);
        }
        if (double.IsPositiveInfinity(best[cells]))
            throw new QuantInputException(
                $"bit budget {budgetBitsPerParameter} bits/param cannot be met at a storage unit of {unit}/16384 bits; " +
                $"raise maxCells (now {maxCells}).");

        var chosen = new LqQuantConfig[matrices.Count];
        double totalCost = 0, totalBits = 0;
        for (int i = matrices.Count - 1, j = cells; i >= 0; i--)
        {
            int c = choice[i][j];
            chosen[i] = matrices[i].Candidates[c].Config;
            totalCost += matrices[i].Candidates[c].Cost;
            totalBits += (double)weights[i][c] / LqQuantConfig.GroupElements;
            j -= units[i][c];
        }
        return new BitAllocation(chosen, totalCost, totalBits, totalBits / totalElements, exact);
    }
}
