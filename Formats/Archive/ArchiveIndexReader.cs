using System.Buffers.Binary;
using System.IO.Hashing;
using System.Text;
using Microsoft.Win32.SafeHandles;

namespace QuantPeft.Formats.Archive;

/// <summary>
/// Reads and checks the parts of an archive that describe it: file header, footer and table of contents.
/// Besides the checksums it checks that the entries, index and footer tile the file exactly, so no byte
/// of the file escapes every check.
/// </summary>
internal static class ArchiveIndexReader
{
    public static List<ArchiveEntry> ReadEntries(string path, SafeFileHandle handle)
    {
        long fileLength = RandomAccess.GetLength(handle);

        var header = new byte[ArchiveLayout.FileHeaderSize];
        int got = ReadUpTo(path, handle, header, 0);
        int magicPrefix = Math.Min(got, ArchiveLayout.Magic.Length);
        if (!header.AsSpan(0, magicPrefix).SequenceEqual(ArchiveLayout.Magic[..magicPrefix]) || got == 0)
            throw Fail(path, $"not a QuantPeft archive: the file does not start with the archive magic (found {Hex(header.AsSpan(0, magicPrefix))})");
        if (got < ArchiveLayout.FileHeaderSize)
            throw Fail(path, $"truncated: {fileLength} bytes, shorter than the {ArchiveLayout.FileHeaderSize}-byte header");
        uint version = BinaryPrimitives.ReadUInt32LittleEndian(header.AsSpan(8));
        if (version != ArchiveLayout.FormatVersion)
            throw Fail(path, $"format version {version} is not supported; this build reads version {ArchiveLayout.FormatVersion}");
        uint flags = BinaryPrimitives.ReadUInt32LittleEndian(header.AsSpan(12));
        if (flags != 0)
            throw Fail(path, $"header flags 0x{flags:x8} are set, but version {ArchiveLayout.FormatVersion} defines none");

        if (fileLength < ArchiveLayout.FileHeaderSize + ArchiveLayout.FooterSize)
            throw Fail(path, $"truncated: {fileLength} bytes, too short to hold the footer (was the archive committed?)");
        var footer = new byte[ArchiveLayout.FooterSize];
        ReadExactly(path, handle, footer, fileLength - ArchiveLayout.FooterSize);
        var f = footer.AsSpan();
        if (!f[40..].SequenceEqual(ArchiveLayout.FooterMagic))
            throw Fail(path, "truncated or unfinished: the file does not end with the archive footer");
        if (BinaryPrimitives.ReadUInt64LittleEndian(f[32..]) != XxHash64.HashToUInt64(f[..32]))
            throw Fail(path, "the footer fails its checksum");
        ulong indexOffset = BinaryPrimitives.ReadUInt64LittleEndian(f);
        ulong indexLength = BinaryPrimitives.ReadUInt64LittleEndian(f[8..]);
        ulong entryCount = BinaryPrimitives.ReadUInt64LittleEndian(f[16..]);
        ulong indexChecksum = BinaryPrimitives.ReadUInt64LittleEndian(f[24..]);
        if (indexLength > ArchiveLayout.MaxIndexLength || indexOffset < ArchiveLayout.FileHeaderSize || indexOffset > (ulong)fileLength
            || indexOffset + indexLength != (ulong)(fileLength - ArchiveLayout.FooterSize))
            throw Fail(path, $"the footer places the table of contents at [{indexOffset}, +{indexLength}), which does not end where the footer starts ({fileLength - ArchiveLayout.FooterSize})");

        var index = new byte[indexLength];
        ReadExactly(path, handle, index, (long)indexOffset);
        if (XxHash64.HashToUInt64(index) != indexChecksum)
            throw Fail(path, "the table of contents fails its checksum");
        return ParseIndex(path, index, entryCount, (long)indexOffset);
    }

    private static List<ArchiveEntry> ParseIndex(string path, byte[] index, ulong entryCount, long indexOffset)
    {
        const int recordFixed = 8 + ArchiveLayout.EntryFixedSize - 4; // offset, then header bytes [4, 40)
        var entries = new List<ArchiveEntry>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        long expectedOffset = ArchiveLayout.FileHeaderSize;
        var s = index.AsSpan();
        while (!s.IsEmpty)
        {
            if (s.Length < recordFixed)
                throw Fail(path, $"the table of contents ends inside record {entries.Count}");
            ulong offset = BinaryPrimitives.ReadUInt64LittleEndian(s);
            byte codec = s[8], reserved = s[9];
            int nameLength = BinaryPrimitives.ReadUInt16LittleEndian(s[10..]);
            ulong length = BinaryPrimitives.ReadUInt64LittleEndian(s[12..]);
            ulong stored = BinaryPrimitives.ReadUInt64LittleEndian(s[20..]);
            ulong checksum = BinaryPrimitives.ReadUInt64LittleEndian(s[28..]);
            ulong storedChecksum = BinaryPrimitives.ReadUInt64LittleEndian(s[36..]);
            if (nameLength == 0 || nameLength > ArchiveLayout.MaxNameBytes || s.Length < recordFixed + nameLength)
                throw Fail(path, $"record {entries.Count} of the table of contents has a bad name length {nameLength}");
            string name = DecodeName(path, s.Slice(recordFixed, nameLength), entries.Count);
            s = s[(recordFixed + nameLength)..];

            if (codec != ArchiveLayout.CodecZstd || reserved != 0)
                throw new ArchiveFormatException(path, name, $"unknown codec {codec} (reserved byte {reserved}); version 1 has only zstd (1)");
            if (!names.Add(name))
                throw new ArchiveFormatException(path, name, "appears twice in the table of contents");
            if (offset != (ulong)expectedOffset)
                throw new ArchiveFormatException(path, name, $"recorded at offset {offset}, but the previous entry ends at {expectedOffset}");
            long room = indexOffset - expectedOffset - ArchiveLayout.EntryOverhead - nameLength;
            if (stored > (ulong)Math.Max(room, 0) || length > long.MaxValue)
                throw new ArchiveFormatException(path, name, $"recorded lengths (stored {stored}, payload {length}) do not fit in the file");
            entries.Add(new ArchiveEntry(name, (long)length, (long)stored, checksum) { Offset = expectedOffset, StoredChecksum = storedChecksum });
            expectedOffset += ArchiveLayout.EntryOverhead + nameLength + (long)stored;
        }
        if (expectedOffset != indexOffset)
            throw Fail(path, $"the entries end at offset {expectedOffset}, but the table of contents starts at {indexOffset}");
        if ((ulong)entries.Count != entryCount)
            throw Fail(path, $"the footer counts {entryCount} entries, the table of contents has {entries.Count}");
        return entries;
    }

    private static string DecodeName(string path, ReadOnlySpan<byte> bytes, int record)
    {
        try
        {
            string name = ArchiveLayout.StrictUtf8.GetString(bytes);
            if (name.Contains('\0'))
                throw Fail(path, $"record {record} of the table of contents has a name with a NUL character");
            return name;
        }
        catch (DecoderFallbackException e)
        {
            throw new ArchiveFormatException(path, null, $"record {record} of the table of contents has a name that is not UTF-8", e);
        }
    }

    private static int ReadUpTo(string path, SafeFileHandle handle, Span<byte> buffer, long offset)
    {
        int total = 0;
        try
        {
            while (total < buffer.Length)
            {
                int n = RandomAccess.Read(handle, buffer[total..], offset + total);
                if (n == 0)
                    break;
                total += n;
            }
        }
        catch (IOException e)
        {
            throw new ArchiveFormatException(path, null, $"cannot be read: {e.Message}", e);
        }
        return total;
    }

    private static void ReadExactly(string path, SafeFileHandle handle, Span<byte> buffer, long offset)
    {
        if (ReadUpTo(path, handle, buffer, offset) != buffer.Length)
            throw Fail(path, $"the file ends before offset {offset + buffer.Length} (truncated?)");
    }

    private static ArchiveFormatException Fail(string path, string problem) => new(path, null, problem);

    private static string Hex(ReadOnlySpan<byte> bytes) => bytes.IsEmpty ? "an empty file" : Convert.ToHexString(bytes);
}
