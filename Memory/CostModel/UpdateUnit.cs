using System.Globalization;

namespace QuantPeft.Memory.CostModel;

/// <summary>
/// The group of trainable tensors that is updated (layer-wise mode) or sharded (FSDP) as one: a decoder layer, the
/// token embedding, the LM head or the final norm. Tensors of one unit are summed together by those prices.
/// </summary>
/// <remarks>
/// A decoder layer's index converts to its unit implicitly, so the layer loops read as they did; the three units
/// outside the layers exist only as the named values, never as numbers.
/// </remarks>
public readonly record struct UpdateUnit
{
    private const int EmbeddingCode = -1, LmHeadCode = -2, FinalNormCode = -3;

    // A layer index (≥ 0), or one of the negative codes above.
    private readonly int _code;

    private UpdateUnit(int code) => _code = code;

    /// <summary>The token embedding.</summary>
    public static UpdateUnit Embedding => new(EmbeddingCode);

    /// <summary>The LM head (absent when it is tied to the embedding).</summary>
    public static UpdateUnit LmHead => new(LmHeadCode);

    /// <summary>The final RMSNorm after the last decoder layer.</summary>
    public static UpdateUnit FinalNorm => new(FinalNormCode);

    /// <summary>Decoder layer <paramref name="index"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="index"/> is negative.</exception>
    public static UpdateUnit Layer(int index)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        return new UpdateUnit(index);
    }

    /// <summary>Decoder layer <paramref name="index"/> (see <see cref="Layer"/>).</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="index"/> is negative.</exception>
    public static implicit operator UpdateUnit(int index) => Layer(index);

    /// <summary>Whether this is a decoder layer.</summary>
    public bool IsLayer => _code >= 0;

    /// <inheritdoc/>
    public override string ToString() => _code switch
    {
        EmbeddingCode => "embedding",
        LmHeadCode => "lm_head",
        FinalNormCode => "final norm",
        _ => "layer " + _code.ToString(CultureInfo.InvariantCulture),
    };
}
