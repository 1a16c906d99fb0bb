namespace QuantPeft.Quant.Codecs;

/// <summary>The per-block absmax scale and the input check shared by all quantizers.</summary>
public static class BlockScale
{
    /// <summary>
    /// Lower bound of a stored absmax. bitsandbytes' reference backend clamps to this so an all-zero block
    /// gives codes of 0.0 instead of NaN. The clamped value is what is stored, so that every code is
    /// relative to the stored scale (decode = table[code] · stored absmax); it only differs from max|x| for blocks
    /// whose largest magnitude is below 1e-38, where the decoded value is below 1e-38 either way.
    /// </summary>
    public const float MinAbsMax = 1e-38f;

    /// <summary>
    /// <c>max(max|x|, 1e-38)</c> over one block, in plain float32 comparisons (exact, so every backend agrees).
    /// </summary>
    /// <param name="block">The block's elements.</param>
    /// <param name="firstIndex">Flat index of the block's first element, for the error message.</param>
    /// <exception cref="QuantInputException">The block holds NaN or ±Inf: they have no code (an Inf absmax would turn
    /// every other element of the block into 0 and the Inf itself into NaN), so they are rejected, not encoded.</exception>
    public static float AbsMax(ReadOnlySpan<float> block, long firstIndex)
    {
        float max = 0f;
        for (int i = 0; i < block.Length; i++)
        {
            float magnitude = MathF.Abs(block[i]);
            if (!(magnitude <= float.MaxValue)) ThrowNonFinite(block, firstIndex);
            if (magnitude > max) max = magnitude;
        }
        return max < MinAbsMax ? MinAbsMax : max;
    }

    /// <summary>Throws the error for the first non-finite element of <paramref name="block"/>.</summary>
    /// <exception cref="QuantInputException">Always.</exception>
    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    public static void ThrowNonFinite(ReadOnlySpan<float> block, long firstIndex)
    {
        int i = 0;
        while (i < block.Length && float.IsFinite(block[i])) i++;
        float value = i < block.Length ? block[i] : float.NaN;
        throw new QuantInputException(
            $"input: element {firstIndex + i} is {value}; blockwise quantization needs finite values (NaN and ±Inf have no code)");
    }
}
