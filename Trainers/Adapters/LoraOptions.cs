namespace QuantPeft.Trainers.Adapters;

/// <summary>
/// Hyper-parameters of a LoRA-style adapter (LoRA, PiSSA, DoRA), validated once at construction.
/// </summary>
public sealed record LoraOptions
{
    /// <summary>Creates validated options.</summary>
    /// <param name="rank">r &gt; 0.</param>
    /// <param name="alpha">α; the update is scaled by α/r (or α/√r with rsLoRA).</param>
    /// <param name="dropout">Dropout on the adapter input, in [0, 1).</param>
    /// <param name="useRsLora">Use rank-stabilised scaling α/√r.</param>
    /// <exception cref="AdapterException">A value is out of range.</exception>
    public LoraOptions(int rank, double alpha, double dropout = 0.0, bool useRsLora = false)
    {
        if (rank <= 0) throw new AdapterException($"LoRA rank must be a positive integer, got {rank}");
        if (!(alpha > 0) || double.IsInfinity(alpha)) throw new AdapterException($"LoRA alpha must be positive and finite, got {alpha}");
        if (!(dropout >= 0 && dropout < 1)) throw new AdapterException($"LoRA dropout must be in [0, 1), got {dropout}");
        Rank = rank;
        Alpha = alpha;
        Dropout = dropout;
        UseRsLora = useRsLora;
    }

    /// <summary>Adapter rank r.</summary>
    public int Rank { get; }

    /// <summary>Scaling numerator α (PEFT's <c>lora_alpha</c>).</summary>
    public double Alpha { get; }

    /// <summary>Dropout probability on the adapter path.</summary>
    public double Dropout { get; }

    /// <summary>Whether the scaling is α/√r (rsLoRA) instead of α/r.</summary>
    public bool UseRsLora { get; }

    /// <summary>The factor applied to B·A: α/r, or α/√r with rsLoRA.</summary>
    public double Scaling => UseRsLora ? Alpha / Math.Sqrt(Rank) : Alpha / Rank;
}
