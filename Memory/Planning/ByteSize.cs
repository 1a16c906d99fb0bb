using System.Globalization;

namespace QuantPeft.Memory.Planning;

/// <summary>Parses and prints memory sizes: <c>24GiB</c>, <c>24GB</c>, <c>500MiB</c>, <c>0</c>.</summary>
public static class ByteSize
{
    private static readonly (string Suffix, long Factor)[] Units =
    [
        ("tib", 1L << 40), ("gib", 1L << 30), ("mib", 1L << 20), ("kib", 1L << 10),
        ("tb", 1_000_000_000_000L), ("gb", 1_000_000_000L), ("mb", 1_000_000L), ("kb", 1_000L),
        ("t", 1L << 40), ("g", 1L << 30), ("m", 1L << 20), ("k", 1L << 10), ("b", 1L),
    ];

    /// <summary>
    /// Parses a size. Binary suffixes (KiB, MiB, GiB, TiB) are powers of 1024, decimal ones (KB, MB, GB, TB)
    /// powers of 1000, as the SI and IEC define them; bare K/M/G mean the binary units. A bare number is bytes.
    /// </summary>
    /// <exception cref="PlanningException">The text is not a non-negative size; the message names <paramref name="flag"/>.</exception>
    public static long Parse(string text, string flag)
    {
        string t = text.Trim().ToLowerInvariant().Replace("_", "", StringComparison.Ordinal);
        long factor = 1;
        foreach (var (suffix, f) in Units)
        {
            if (t.EndsWith(suffix, StringComparison.Ordinal))
            {
                factor = f;
                t = t[..^suffix.Length].Trim();
                break;
            }
        }
        if (!double.TryParse(t, NumberStyles.Float, CultureInfo.InvariantCulture, out double value) || value < 0 || double.IsNaN(value)
            || value * factor > long.MaxValue / 2)
            throw new PlanningException($"{flag}: expected a size such as 24GiB, 24GB, 500MiB or 0; found '{text}'");
        return (long)Math.Round(value * factor);
    }

    /// <summary>Formats bytes in binary units with two decimals (e.g. <c>13.84 GiB</c>).</summary>
    public static string Format(long bytes)
    {
        double b = Math.Abs((double)bytes);
        string sign = bytes < 0 ? "-" : "";
        if (b >= 1L << 30) return sign + (b / (1L << 30)).ToString("0.00", CultureInfo.InvariantCulture) + " GiB";
        if (b >= 1L << 20) return sign + (b / (1L << 20)).ToString("0.0", CultureInfo.InvariantCulture) + " MiB";
        if (b >= 1L << 10) return sign + (b / (1L << 10)).ToString("0.0", CultureInfo.InvariantCulture) + " KiB";
        return sign + b.ToString("0", CultureInfo.InvariantCulture) + " B";
    }
}
