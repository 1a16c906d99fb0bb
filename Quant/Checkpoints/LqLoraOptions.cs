using QuantPeft.Quant.LqLora;

namespace QuantPeft.Quant.Checkpoints;

/// <summary>
/// How <c>qpeft quantize --method lq-lora</c> quantizes a checkpoint: the average bit budget of the quantized
/// weights, the rank of the low-rank factors, the first-level block size B0, and the candidate configurations
/// the allocator chooses from.
/// </summary>
/// <remarks>
/// The candidates are NF2, NF3, NF4 and NF8 data with QLoRA's double-quantization scale layout in LQ-LoRA's
/// space: 8-bit first-level scales per B0 weights, a float32 second-level scale per 256 first-level scales,
/// i.e. <c>b + 8/B0 + 32/(256·B0)</c> bits per weight (2.127, 3.127, 4.127 and 8.127 at B0 = 64). The
/// reference's full 432-config space is available to library callers through
/// <see cref="LqQuantConfig.SearchSpace"/>; the command keeps to these four because every candidate costs one
/// full decomposition per matrix.
/// </remarks>
public sealed record LqLoraOptions
{
    /// <summary>Bit widths of the candidate configurations.</summary>
    public static IReadOnlyList<int> CandidateBits { get; } = [2, 3, 4, 8];

    /// <summary>Smallest allowed B0 (LQ-LoRA's search space starts at 16).</summary>
    public const int MinBlockSize = 16;

    /// <summary>Creates validated options.</summary>
    /// <exception cref="QuantInputException">A value out of range; the message names the flag.</exception>
    public LqLoraOptions(double bitsBudget, int rank, int blockSize = 64, int maxIterations = 100, ulong seed = 0)
    {
        if (blockSize < MinBlockSize || blockSize > Codecs.BlockSizes.Max || (blockSize & (blockSize - 1)) != 0)
            throw new QuantInputException($"--blocksize {blockSize} is not allowed: use a power of two from {MinBlockSize} to {Codecs.BlockSizes.Max}");
        Candidates = [.. CandidateBits.Select(b => new LqQuantConfig(b, 8, SecondLevelStorage.Float32, blockSize, 256))];
        double min = Candidates.Min(c => c.BitsPerParameter), max = Candidates.Max(c => c.BitsPerParameter);
        if (double.IsNaN(bitsBudget) || bitsBudget < min || bitsBudget > max)
            throw new QuantInputException(
                $"--bits {bitsBudget} is outside the supported range {min:0.####}..{max:0.####} bits per weight " +
                $"(NF{CandidateBits[0]} to NF{CandidateBits[^1]} with block size {blockSize})");
        if (rank < 1) throw new QuantInputException($"--rank {rank} is not allowed: the low-rank factors need a rank of at least 1");
        if (maxIterations < 1) throw new QuantInputException($"--iterations {maxIterations} is not allowed: use at least 1");
        BitsBudget = bitsBudget;
        Rank = rank;
        BlockSize = blockSize;
        MaxIterations = maxIterations;
        Seed = seed;
    }

    /// <summary>Average bits per quantized weight (the low-rank factors are not counted, as in LQ-LoRA).</summary>
    public double BitsBudget { get; }

    /// <summary>Rank r of L1 (m×r) and L2 (r×n).</summary>
    public int Rank { get; }

    /// <summary>B0: weights per first-level scale.</summary>
    public int BlockSize { get; }

    /// <summary>Upper bound on decomposition rounds per matrix and candidate (the reference uses 100).</summary>
    public int MaxIterations { get; }

    /// <summary>Seed of the randomized SVD sketches (matrix i uses seed + i).</summary>
    public ulong Seed { get; }

    /// <summary>The configurations the allocator chooses from.</summary>
    public IReadOnlyList<LqQuantConfig> Candidates { get; }
}
