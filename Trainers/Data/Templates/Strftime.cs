using System.Globalization;
using System.Text;

namespace QuantPeft.Trainers.Data.Templates;

/// <summary>Python's <c>datetime.strftime</c> for the directives chat templates use (C locale), behind <c>strftime_now</c>.</summary>
internal static class Strftime
{
    public static string Format(DateTime t, string format, Func<string, TemplateException> fail)
    {
        var c = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        for (int i = 0; i < format.Length; i++)
        {
            if (format[i] != '%' || i + 1 == format.Length)
            {
                sb.Append(format[i]);
                continue;
            }
            char d = format[++i];
            bool noPad = d == '-' && i + 1 < format.Length;   // glibc's %-d: no zero padding
            if (noPad) d = format[++i];
            string two(int v) => noPad ? v.ToString(c) : v.ToString("00", c);
            sb.Append(d switch
            {
                'd' => two(t.Day),
                'm' => two(t.Month),
                'Y' => t.Year.ToString(c),
                'y' => two(t.Year % 100),
                'H' => two(t.Hour),
                'I' => two(t.Hour % 12 == 0 ? 12 : t.Hour % 12),
                'M' => two(t.Minute),
                'S' => two(t.Second),
                'p' => t.Hour < 12 ? "AM" : "PM",
                'B' => t.ToString("MMMM", c),
                'b' or 'h' => t.ToString("MMM", c),
                'A' => t.ToString("dddd", c),
                'a' => t.ToString("ddd", c),
                'j' => noPad ? t.DayOfYear.ToString(c) : t.DayOfYear.ToString("000", c),
                'e' => t.Day.ToString(c).PadLeft(2),
                '%' => "%",
                _ => throw fail($"strftime_now: unsupported directive '%{d}'"),
            });
        }
        return sb.ToString();
    }
}
