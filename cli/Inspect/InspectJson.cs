using System.Text.Json;
using QuantPeft.Formats.HuggingFace;

namespace QuantPeft.Cli.Inspect;

/// <summary>The <c>--json</c> form of <c>qpeft inspect</c> (schema in docs/cli.md).</summary>
internal static class InspectJson
{
    public static string Write(CheckpointInventory inv)
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteString("path", inv.Path);
            w.WriteNumber("parameters", inv.Parameters);
            w.WriteNumber("bytes", inv.Bytes);
            w.WriteNumber("tensor_count", inv.Tensors.Count);
            w.WriteStartArray("files");
            foreach (string f in inv.Files) w.WriteStringValue(f);
            w.WriteEndArray();
            if (inv.Spec is { } spec) WriteModel(w, spec, inv.ConfigPath!);
            else w.WriteNull("model");
            w.WriteStartArray("dtypes");
            foreach (DTypeTotal d in inv.ByDType)
            {
                w.WriteStartObject();
                w.WriteString("dtype", d.DType);
                w.WriteNumber("tensors", d.Tensors);
                w.WriteNumber("parameters", d.Elements);
                w.WriteNumber("bytes", d.Bytes);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteStartArray("tensors");
            foreach (TensorRow t in inv.Tensors)
            {
                w.WriteStartObject();
                w.WriteString("name", t.Name);
                w.WriteString("dtype", t.DType);
                w.WriteStartArray("shape");
                foreach (long s in t.Shape) w.WriteNumberValue(s);
                w.WriteEndArray();
                w.WriteNumber("parameters", t.Elements);
                w.WriteNumber("bytes", t.Bytes);
                w.WriteString("file", t.File);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(stream.ToArray());
    }

    private static void WriteModel(Utf8JsonWriter w, ModelSpec s, string configPath)
    {
        w.WriteStartObject("model");
        w.WriteString("config", configPath);
        w.WriteString("model_type", s.ModelType);
        w.WriteNumber("num_hidden_layers", s.NumLayers);
        w.WriteNumber("hidden_size", s.HiddenSize);
        w.WriteNumber("intermediate_size", s.IntermediateSize);
        w.WriteNumber("num_attention_heads", s.NumHeads);
        w.WriteNumber("num_key_value_heads", s.NumKvHeads);
        w.WriteNumber("head_dim", s.HeadDim);
        w.WriteNumber("vocab_size", s.VocabSize);
        w.WriteBoolean("tie_word_embeddings", s.TieWordEmbeddings);
        w.WriteNumber("rope_theta", s.RopeTheta);
        if (s.RopeScaling is { } r) w.WriteString("rope_scaling", $"{r.Type} x{r.Factor}");
        w.WriteNumber("rms_norm_eps", s.RmsNormEps);
        w.WriteBoolean("attention_bias", s.AttentionBias);
        w.WriteNumber("max_position_embeddings", s.MaxPositionEmbeddings);
        w.WriteNumber("parameters_from_config", s.ParameterCount);
        w.WriteEndObject();
    }
}
