using System.Globalization;
using System.Text.Json;

namespace QuantPeft.Formats.HuggingFace;

/// <summary>Number formatting for config.json files that Python reads back with the types transformers expects.</summary>
internal static class ConfigJsonNumbers
{
    /// <summary>
    /// Writes a double the way Python's json module does: whole values keep a ".0" so they load back
    /// as floats (transformers warns about an integer <c>factor</c>), others use the shortest
    /// round-trip form so the value survives exactly.
    /// </summary>
    public static void WriteDouble(Utf8JsonWriter w, double value)
    {
        if (!double.IsFinite(value))
            throw new ArgumentOutOfRangeException(nameof(value), value, "config.json numbers must be finite");
        string text = value == Math.Floor(value) && Math.Abs(value) < 1e16
            ? value.ToString("F1", CultureInfo.InvariantCulture)
            : value.ToString("R", CultureInfo.InvariantCulture).ToLowerInvariant();
        w.WriteRawValue(text);
    }
}
