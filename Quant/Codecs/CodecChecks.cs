namespace QuantPeft.Quant.Codecs;

/// <summary>Argument checks shared by every <see cref="IBlockwiseCodec"/> implementation.</summary>
public static class CodecChecks
{
    /// <summary>Checks the block size and the lengths of the packed and absmax buffers for n 4-bit elements.</summary>
    /// <exception cref="QuantInputException">Any of them is wrong.</exception>
    public static void FourBit(int count, int blockSize, int packedLength, int absmaxLength)
    {
        BlockSizes.Validate(blockSize, "blockSize");
        Length("packed", (count + 1L) / 2, packedLength, count);
        Length("absmax", BlockSizes.BlockCount(count, blockSize), absmaxLength, count);
    }

    /// <summary>Checks the block size and the lengths of the code and absmax buffers for n 8-bit elements.</summary>
    /// <exception cref="QuantInputException">Any of them is wrong.</exception>
    public static void Dynamic(int count, int blockSize, int codesLength, int absmaxLength)
    {
        BlockSizes.Validate(blockSize, "blockSize");
        Length("codes", count, codesLength, count);
        Length("absmax", BlockSizes.BlockCount(count, blockSize), absmaxLength, count);
    }

    private static void Length(string argument, long expected, int found, int count)
    {
        if (expected != found)
            throw new QuantInputException($"{argument}: expected length {expected} for {count} elements, found {found}");
    }
}
