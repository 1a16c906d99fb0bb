namespace QuantPeft.Quant.LqLora;

/// <summary>
/// Packs k-bit codes (k = 1..8) into a big-endian bit stream: code i occupies bits [i·k, (i+1)·k) counted from
/// the most significant bit of byte 0, and the last byte is zero-padded. For k = 4 this is bitsandbytes'
/// nibble order (element 2j in the high nibble); for k = 8 it is one byte per code. So NF2/NF3 codes cost
/// exactly their bit width, which is what the LQ-LoRA budget counts.
/// </summary>
public static class BitPacking
{
    /// <summary>Bytes needed for <paramref name="count"/> codes of <paramref name="bits"/> bits.</summary>
    public static long PackedLength(long count, int bits) => (count * bits + 7) / 8;

    /// <summary>Packs <paramref name="codes"/> (each &lt; 2^bits) into a new array.</summary>
    /// <exception cref="QuantInputException">bits outside 1..8, or a code that does not fit in bits.</exception>
    public static byte[] Pack(ReadOnlySpan<byte> codes, int bits)
    {
        CheckBits(bits);
        var packed = new byte[PackedLength(codes.Length, bits)];
        int limit = 1 << bits;
        if (bits == 8)
        {
            codes.CopyTo(packed);
            return packed;
        }
        // A 32-bit accumulator holds at most 7 pending bits plus one code, so it never overflows.
        uint acc = 0;
        int pending = 0, o = 0;
        for (int i = 0; i < codes.Length; i++)
        {
            int c = codes[i];
            if (c >= limit) throw new QuantInputException($"bit packing: code {c} at index {i} does not fit in {bits} bits");
            acc = (acc << bits) | (uint)c;
            pending += bits;
            while (pending >= 8)
            {
                pending -= 8;
                packed[o++] = (byte)(acc >> pending);
            }
            acc &= (1u << pending) - 1;
        }
        if (pending > 0) packed[o] = (byte)(acc << (8 - pending));
        return packed;
    }

    /// <summary>Unpacks <paramref name="count"/> codes of <paramref name="bits"/> bits.</summary>
    /// <exception cref="QuantInputException">bits outside 1..8, or a packed buffer of the wrong length.</exception>
    public static byte[] Unpack(ReadOnlySpan<byte> packed, int bits, long count, string name = "codes")
    {
        CheckBits(bits);
        long expected = PackedLength(count, bits);
        if (packed.Length != expected)
            throw new QuantInputException($"'{name}': {count} codes of {bits} bits need {expected} bytes, found {packed.Length}");
        var codes = new byte[count];
        if (bits == 8)
        {
            packed.CopyTo(codes);
            return codes;
        }
        uint mask = (1u << bits) - 1, acc = 0;
        int available = 0, p = 0;
        for (long i = 0; i < count; i++)
        {
            if (available < bits)
            {
                acc = (acc << 8) | packed[p++];
                available += 8;
            }
            available -= bits;
            codes[i] = (byte)((acc >> available) & mask);
            acc &= (1u << available) - 1;
        }
        return codes;
    }

    private static void CheckBits(int bits)
    {
        if (bits is < 1 or > 8) throw new QuantInputException($"bit packing: {bits} bits per code is outside 1..8");
    }
}
