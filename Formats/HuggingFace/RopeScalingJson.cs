using System.Text.Json;

namespace QuantPeft.Formats.HuggingFace;

/// <summary>
/// Reads and writes the <c>rope_scaling</c> object (and the same keys inside transformers 5's
/// <c>rope_parameters</c>). The required keys per type follow <c>modeling_rope_utils.py</c>: linear and
/// dynamic need <c>factor</c>; llama3 needs <c>factor</c>, <c>low_freq_factor</c>, <c>high_freq_factor</c>
/// and <c>original_max_position_embeddings</c>; longrope (Phi-3) needs <c>short_factor</c> and <c>long_factor</c>, one entry per
/// rotated frequency. The old key <c>type</c> is accepted for <c>rope_type</c>, and Phi-3's first name for longrope, <c>su</c>.
/// </summary>
internal static class RopeScalingJson
{
    public const string Linear = "linear";
    public const string Dynamic = "dynamic";
    public const string Llama3 = "llama3";
    public const string LongRope = "longrope";

    private static readonly string[] Supported = ["default", Linear, Dynamic, Llama3, LongRope];

    /// <summary>
    /// Parses one scaling object; null for <c>rope_type</c> "default" (plain RoPE). For linear and dynamic,
    /// an absent <c>original_max_position_embeddings</c> means the context the model was trained with is
    /// <c>max_position_embeddings</c>, which is what transformers' dynamic NTK code uses.
    /// </summary>
    /// <param name="f">The scaling object.</param>
    /// <param name="maxPositionEmbeddings">The config's <c>max_position_embeddings</c>.</param>
    /// <param name="originalMaxPositionEmbeddings">A top-level <c>original_max_position_embeddings</c> (Phi-3 writes it there), or null.</param>
    /// <param name="rotaryFrequencies">How many frequencies RoPE rotates (rotary dim / 2): the length longrope's lists must have.</param>
    public static RopeScaling? Parse(ConfigFields f, int maxPositionEmbeddings, int? originalMaxPositionEmbeddings = null, int rotaryFrequencies = 0)
    {
        string type = f.OptionalString("rope_type") ?? f.OptionalString("type")
            ?? throw f.Error("rope_type", $"is required (one of {string.Join(", ", Supported)}) but is missing");
        switch (type)
        {
            case "default":
                return null;
            case Linear:
            case Dynamic:
                return new RopeScaling(type, f.RequiredPositiveDouble("factor"),
                    OriginalMaxPositionEmbeddings: f.OptionalPositiveInt("original_max_position_embeddings") ?? maxPositionEmbeddings);
            case Llama3:
                double factor = f.RequiredPositiveDouble("factor");
                double low = f.RequiredPositiveDouble("low_freq_factor");
                double high = f.RequiredPositiveDouble("high_freq_factor");
                int original = f.OptionalPositiveInt("original_max_position_embeddings")
                    ?? throw f.Error("original_max_position_embeddings", "is required for rope_type 'llama3' (a positive integer) but is missing");
                // The llama3 ramp divides by (high - low); equal factors would make it undefined.
                if (high <= low)
                    throw f.Error("high_freq_factor", $"must be greater than low_freq_factor ({low}), found {high}");
                return new RopeScaling(type, factor, low, high, original);
            case LongRope:
            case "su":
                int longOriginal = f.OptionalPositiveInt("original_max_position_embeddings") ?? originalMaxPositionEmbeddings
                    ?? throw f.Error("original_max_position_embeddings", "is required for rope_type 'longrope' (a positive integer) but is missing");
                // transformers derives the factor from the two contexts when the object does not give one.
                double longFactor = f.OptionalPositiveDouble("factor") ?? (double)maxPositionEmbeddings / longOriginal;
                return new RopeScaling(LongRope, longFactor, OriginalMaxPositionEmbeddings: longOriginal)
                {
                    ShortFactor = FactorList(f, "short_factor", rotaryFrequencies),
                    LongFactor = FactorList(f, "long_factor", rotaryFrequencies),
                    AttentionFactor = f.OptionalPositiveDouble("attention_factor"),
                };
            default:
                throw f.Error(f.Has("rope_type") ? "rope_type" : "type",
                    $"'{type}' is not a supported RoPE scaling; supported: {string.Join(", ", Supported)}");
        }
    }

    private static double[] FactorList(ConfigFields f, string name, int expected)
    {
        var values = f.OptionalPositiveDoubleArray(name)
            ?? throw f.Error(name, "is required for rope_type 'longrope' (a list of positive numbers) but is missing");
        if (values.Length != expected)
            throw f.Error(name, $"must hold one factor per rotated frequency (rotary dimension / 2 = {expected}), found {values.Length}");
        return values;
    }

    /// <summary>Writes <paramref name="scaling"/> as a <c>rope_scaling</c> object, keys sorted as transformers saves them.</summary>
    public static void Write(Utf8JsonWriter w, RopeScaling scaling, int maxPositionEmbeddings)
    {
        w.WriteStartObject();
        if (scaling.Type == LongRope)
        {
            // Phi-3 keeps original_max_position_embeddings at the top level; the factor follows from the two contexts.
            if (scaling.AttentionFactor is { } attention)
            {
                w.WritePropertyName("attention_factor");
                ConfigJsonNumbers.WriteDouble(w, attention);
            }
            if (scaling.Factor != (double)maxPositionEmbeddings / scaling.OriginalMaxPositionEmbeddings)
            {
                w.WritePropertyName("factor");
                ConfigJsonNumbers.WriteDouble(w, scaling.Factor);
            }
            WriteList(w, "long_factor", scaling.LongFactor!);
            WriteList(w, "short_factor", scaling.ShortFactor!);
            w.WriteString("type", LongRope);
            w.WriteEndObject();
            return;
        }
        w.WritePropertyName("factor");
        ConfigJsonNumbers.WriteDouble(w, scaling.Factor);
        if (scaling.Type == Llama3)
        {
            w.WritePropertyName("high_freq_factor");
            ConfigJsonNumbers.WriteDouble(w, scaling.HighFreqFactor);
            w.WritePropertyName("low_freq_factor");
            ConfigJsonNumbers.WriteDouble(w, scaling.LowFreqFactor);
            w.WriteNumber("original_max_position_embeddings", scaling.OriginalMaxPositionEmbeddings);
        }
        else if (scaling.OriginalMaxPositionEmbeddings != maxPositionEmbeddings)
        {
            w.WriteNumber("original_max_position_embeddings", scaling.OriginalMaxPositionEmbeddings);
        }
        w.WriteString("rope_type", scaling.Type);
        w.WriteEndObject();
    }

    private static void WriteList(Utf8JsonWriter w, string name, IReadOnlyList<double> values)
    {
        w.WritePropertyName(name);
        w.WriteStartArray();
        foreach (double v in values)
            ConfigJsonNumbers.WriteDouble(w, v);
        w.WriteEndArray();
    }
}
