namespace QuantPeft.Quant.Codecs;

/// <summary>Block sizes of the blockwise quantizers and their whitelist.</summary>
public static class BlockSizes
{
    /// <summary>Default block size of the 4-bit quantizers (QLoRA).</summary>
    public const int FourBitDefault = 64;

    /// <summary>Default block size of the general 8-bit dynamic quantizer (<c>quantize_blockwise</c>).</summary>
    public const int DynamicDefault = 4096;

    /// <summary>Block size of 8-bit optimizer states and of the nested (double-quantized) absmax.</summary>
    public const int OptimizerState = 256;

    /// <summary>Smallest allowed block size. 32 keeps every full block a whole number of 16-byte vectors of packed nibbles.</summary>
    public const int Min = 32;

    /// <summary>Largest allowed block size.</summary>
    public const int Max = 4096;

    /// <summary>Whether <paramref name="blockSize"/> is a power of two in [<see cref="Min"/>, <see cref="Max"/>].</summary>
    public static bool IsValid(int blockSize) =>
        blockSize is >= Min and <= Max && (blockSize & (blockSize - 1)) == 0;

    /// <summary>Throws unless <paramref name="blockSize"/> is valid.</summary>
    /// <param name="blockSize">The block size to check.</param>
    /// <param name="argument">The argument or field name, for the message.</param>
    /// <exception cref="QuantInputException">Not a power of two in 32..4096.</exception>
    public static void Validate(int blockSize, string argument)
    {
        if (!IsValid(blockSize))
            throw new QuantInputException(
                $"{argument}: expected a block size that is a power of two in {Min}..{Max}, found {blockSize}");
    }

    /// <summary>Number of blocks covering <paramref name="count"/> elements: <c>ceil(count / blockSize)</c>.</summary>
    public static int BlockCount(long count, int blockSize) => checked((int)((count + blockSize - 1) / blockSize));
}
