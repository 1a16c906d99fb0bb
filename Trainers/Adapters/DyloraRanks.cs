namespace QuantPeft.Trainers.Adapters;

/// <summary>
/// DyLoRA's rank distribution p_B: the rank b a training step uses, uniform on {1, …, r} as in the paper's experiments.
/// It is a pure function of the run's seed and the optimizer step, so a resumed run draws the same ranks as one that
/// never stopped, with no generator state to save, and gradient accumulation keeps one b for all micro-batches of a step.
/// </summary>
public static class DyloraRanks
{
    /// <summary>The rank b ∈ [1, <paramref name="rank"/>] of optimizer step <paramref name="step"/> (0-based) of a run seeded <paramref name="seed"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="rank"/> is not positive or <paramref name="step"/> is negative.</exception>
    public static int Sample(long seed, long step, int rank)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(rank);
        ArgumentOutOfRangeException.ThrowIfNegative(step);
        // SplitMix64 of the pair (seed, step): a counter-based draw; Lemire's multiply-shift maps it onto [0, rank).
        ulong h = Mix(Mix((ulong)seed) ^ (ulong)step);
        return 1 + (int)(((UInt128)h * (ulong)rank) >> 64);
    }

    private static ulong Mix(ulong z)
    {
        z += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
