using System.Buffers.Binary;
using System.IO.Hashing;
using System.Text;

namespace QuantPeft.Formats.Archive;

/// <summary>
/// The byte layout of archive format version 1 (docs/formats.md, "Archive format"), in one place:
/// constants, and the encoding of the file header, entry headers, index records and footer.
/// All integers are little-endian; every byte of a finished archive is covered by a check.
/// </summary>
internal static class ArchiveLayout
{
    public const uint FormatVersion = 1;

    /// <summary>PNG-style magic: a high byte catches 7-bit transfers, CR LF and ^Z catch text-mode mangling.</summary>
    public static ReadOnlySpan<byte> Magic => [0x89, (byte)'Q', (byte)'P', (byte)'A', (byte)'R', 0x0D, 0x0A, 0x1A];

    public static ReadOnlySpan<byte> FooterMagic => [(byte)'Q', (byte)'P', (byte)'A', (byte)'R', (byte)'E', (byte)'N', (byte)'D', 0x1A];

    /// <summary>"QPAE": starts every entry header, so a reader can tell an entry from garbage.</summary>
    public const uint EntryTag = 0x45415051;

    public const int FileHeaderSize = 16;
    public const int FooterSize = 48;

    /// <summary>Entry header bytes before the name: tag 4, codec 1, reserved 1, name length 2, four u64s.</summary>
    public const int EntryFixedSize = 40;

    /// <summary>Entry header bytes besides the name: the fixed part and the trailing header checksum.</summary>
    public const int EntryOverhead = EntryFixedSize + 8;

    public const byte CodecZstd = 1;
    public const int MaxNameBytes = 1024;

    /// <summary>An index larger than this is taken as corruption rather than allocated (about 10^6 entries).</summary>
    public const long MaxIndexLength = 64L << 20;

    public static byte[] EncodeFileHeader()
    {
        var b = new byte[FileHeaderSize];
        Magic.CopyTo(b);
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(8), FormatVersion);
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(12), 0); // flags: none defined in version 1
        return b;
    }

    /// <summary>
    /// The full entry header: fixed fields, name, and XxHash64 of everything before the hash.
    /// Bytes [4, 40 + N) are also what the index stores for the entry, after its offset.
    /// </summary>
    public static byte[] EncodeEntryHeader(byte[] name, long length, long storedLength, ulong checksum, ulong storedChecksum)
    {
        var b = new byte[EntryOverhead + name.Length];
        var s = b.AsSpan();
        BinaryPrimitives.WriteUInt32LittleEndian(s, EntryTag);
        s[4] = CodecZstd;
        s[5] = 0;
        BinaryPrimitives.WriteUInt16LittleEndian(s[6..], checked((ushort)name.Length));
        BinaryPrimitives.WriteUInt64LittleEndian(s[8..], (ulong)length);
        BinaryPrimitives.WriteUInt64LittleEndian(s[16..], (ulong)storedLength);
        BinaryPrimitives.WriteUInt64LittleEndian(s[24..], checksum);
        BinaryPrimitives.WriteUInt64LittleEndian(s[32..], storedChecksum);
        name.CopyTo(s[EntryFixedSize..]);
        int hashAt = EntryFixedSize + name.Length;
        BinaryPrimitives.WriteUInt64LittleEndian(s[hashAt..], XxHash64.HashToUInt64(s[..hashAt]));
        return b;
    }

    /// <summary>An index record: the entry's offset, then bytes [4, 40 + N) of its header.</summary>
    public static void AppendIndexRecord(MemoryStream index, long offset, byte[] entryHeader)
    {
        Span<byte> off = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(off, (ulong)offset);
        index.Write(off);
        index.Write(entryHeader, 4, entryHeader.Length - 4 - 8);
    }

    public static byte[] EncodeFooter(long indexOffset, long indexLength, long entryCount, ulong indexChecksum)
    {
        var b = new byte[FooterSize];
        var s = b.AsSpan();
        BinaryPrimitives.WriteUInt64LittleEndian(s, (ulong)indexOffset);
        BinaryPrimitives.WriteUInt64LittleEndian(s[8..], (ulong)indexLength);
        BinaryPrimitives.WriteUInt64LittleEndian(s[16..], (ulong)entryCount);
        BinaryPrimitives.WriteUInt64LittleEndian(s[24..], indexChecksum);
        BinaryPrimitives.WriteUInt64LittleEndian(s[32..], XxHash64.HashToUInt64(s[..32]));
        FooterMagic.CopyTo(s[40..]);
        return b;
    }

    /// <summary>Strict UTF-8: an archive name that does not decode exactly is corruption, not a lossy string.</summary>
    public static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>Checks a name for writing and returns its UTF-8 bytes.</summary>
    public static byte[] EncodeName(string name)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        if (name.Contains('\0'))
            throw new ArgumentException($"entry name '{name.Replace("\0", "\\0")}' contains a NUL character", nameof(name));
        byte[] bytes;
        try
        {
            bytes = StrictUtf8.GetBytes(name);
        }
        catch (EncoderFallbackException e)
        {
            throw new ArgumentException($"entry name '{name}' is not valid Unicode", nameof(name), e);
        }
        if (bytes.Length > MaxNameBytes)
            throw new ArgumentException($"entry name '{name[..40]}...' is {bytes.Length} UTF-8 bytes; at most {MaxNameBytes} are allowed", nameof(name));
        return bytes;
    }
}
