namespace QuantPeft.Trainers.Data;

/// <summary>
/// Splits a stream into lines of raw bytes with 1-based line numbers. Lines stay bytes so the JSON
/// parser can validate UTF-8 itself and a bad byte is reported against the right line.
/// </summary>
internal static class ByteLines
{
    private static ReadOnlySpan<byte> Bom => [0xEF, 0xBB, 0xBF];

    public static IEnumerable<(int Line, byte[] Bytes)> Read(Stream stream)
    {
        var buffer = new byte[1 << 16];
        var current = new MemoryStream();
        int line = 1;
        bool first = true;
        int read;
        while ((read = stream.Read(buffer, 0, buffer.Length)) > 0)
        {
            int start = 0;
            if (first)
            {
                first = false;
                if (read >= 3 && buffer.AsSpan(0, 3).SequenceEqual(Bom)) start = 3;
            }
            while (start < read)
            {
                int nl = Array.IndexOf(buffer, (byte)'\n', start, read - start);
                if (nl < 0)
                {
                    current.Write(buffer, start, read - start);
                    break;
                }
                current.Write(buffer, start, nl - start);
                yield return (line++, TakeLine(current));
                start = nl + 1;
            }
        }
        if (current.Length > 0) yield return (line, TakeLine(current));
    }

    private static byte[] TakeLine(MemoryStream current)
    {
        byte[] bytes = current.ToArray();
        current.SetLength(0);
        if (bytes.Length > 0 && bytes[^1] == (byte)'\r') Array.Resize(ref bytes, bytes.Length - 1);
        return bytes;
    }
}
