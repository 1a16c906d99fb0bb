using System.Text;
using System.Text.Json.Nodes;
using QuantPeft.Formats.Safetensors;
using QuantPeft.Quant.Checkpoints;

namespace QuantPeft.Trainers.Tests.Recipes;

/// <summary>One stored tensor of a fixture: dtype, shape and raw little-endian bytes.</summary>
internal sealed record RawTensor(SafetensorsDType DType, long[] Shape, byte[] Data);

/// <summary>Pre-quantized model folders for the trainer's tests: written by the project's quantizers, edited, or built by hand.</summary>
internal static class PrequantizedFixtures
{
    /// <summary>
    /// The NF4 code table as the QLoRA paper and bitsandbytes publish it (index = 4-bit code), typed here rather than taken from the
    /// product so that the hand-built fixture is an independent truth.
    /// </summary>
    public static readonly float[] Nf4 =
    [
        -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,
        -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f,
        0.07958029955625534f, 0.16093020141124725f, 0.24611230194568634f, 0.33791524171829224f,
        0.44070982933044434f, 0.5626170039176941f, 0.7229568362236023f, 1.0f,
    ];

    /// <summary><c>qpeft quantize --format nf4|fp4 [--double-quant]</c> of <paramref name="model"/> into <paramref name="output"/>.</summary>
    public static string Bitsandbytes(string model, string output, CheckpointFormat format, bool doubleQuant)
    {
        CheckpointQuantizer.Run(model, output, new QuantizeOptions(format, 64, doubleQuant));
        return output;
    }

    /// <summary>Every tensor of the folder's <c>model.safetensors</c>, by name.</summary>
    public static Dictionary<string, RawTensor> ReadAll(string folder)
    {
        using var checkpoint = SafetensorsCheckpoint.Open(Path.Combine(folder, "model.safetensors"));
        return checkpoint.Tensors.ToDictionary(t => t.Name, t => new RawTensor(t.DType, t.Shape, checkpoint.ReadBytes(t.Name)), StringComparer.Ordinal);
    }

    /// <summary>Replaces the folder's <c>model.safetensors</c> with <paramref name="tensors"/>.</summary>
    public static void WriteAll(string folder, IReadOnlyDictionary<string, RawTensor> tensors)
    {
        var entries = tensors.Select(kv => SafetensorsTensorEntry.FromBytes(kv.Key, kv.Value.DType, kv.Value.Shape, kv.Value.Data)).ToList();
        string path = Path.Combine(folder, "model.safetensors");
        SafetensorsWriter.WriteFile(path + ".tmp", entries, new Dictionary<string, string> { ["format"] = "pt" });
        File.Move(path + ".tmp", path, overwrite: true);
    }

    /// <summary>Edits the folder's tensors in place.</summary>
    public static void Edit(string folder, Action<Dictionary<string, RawTensor>> edit)
    {
        var tensors = ReadAll(folder);
        edit(tensors);
        WriteAll(folder, tensors);
    }

    /// <summary>A uint8 tensor holding UTF-8 <paramref name="json"/>, as bitsandbytes stores its quant state.</summary>
    public static RawTensor JsonTensor(string json)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(json);
        return new RawTensor(SafetensorsDType.U8, [bytes.Length], bytes);
    }

    /// <summary>
    /// Builds, by hand from bitsandbytes' NF4 layout, a bitsandbytes NF4 folder of the dense <paramref name="model"/>'s
    /// architecture: every projection [out, in] gets code <c>k mod 16</c> for element k (two per byte, the even element in
    /// the high nibble) and block b (64 elements) the absmax <c>0.5 + 0.25·b</c>; with <paramref name="nested"/> the absmax
    /// is double-quantized instead: code 255 (the signed dynamic map's 1.0) for even blocks and 127 (its 0.0) for odd
    /// ones, one nested absmax 0.5 per 256 blocks and offset 0.25, so the blocks' scales are 0.75 and 0.25.
    /// Embeddings and norms are copied from <paramref name="model"/>.
    /// </summary>
    /// <returns>The hand-computed dense value of every projection weight (row-major float32), by tensor name.</returns>
    public static Dictionary<string, float[]> HandBuilt(string model, string output, bool nested)
    {
        Directory.CreateDirectory(output);
        var dense = ReadAll(model);
        var tensors = new Dictionary<string, RawTensor>(StringComparer.Ordinal);
        var expected = new Dictionary<string, float[]>(StringComparer.Ordinal);
        foreach (var (name, t) in dense)
        {
            if (!QuantizeOptions.IsLinearProjection(name))
            {
                tensors[name] = t;
                continue;
            }
            long n = t.Shape[0] * t.Shape[1];
            int blocks = (int)(n / 64);
            var packed = new byte[n / 2];
            for (long j = 0; j < n / 2; j++) packed[j] = (byte)(((2 * j) % 16) << 4 | ((2 * j + 1) % 16));
            var scale = new float[blocks];
            for (int b = 0; b < blocks; b++) scale[b] = nested ? (b % 2 == 0 ? 0.75f : 0.25f) : 0.5f + 0.25f * b;
            var values = new float[n];
            // float32 product of two float32 values: the double product is exact, so one rounding gives bitsandbytes' result.
            for (long k = 0; k < n; k++) values[k] = (float)((double)Nf4[k % 16] * scale[k / 64]);
            expected[name] = values;

            tensors[name] = new RawTensor(SafetensorsDType.U8, [n / 2, 1], packed);
            tensors[name + ".quant_map"] = Floats(Nf4);
            string shape = $"[{t.Shape[0]}, {t.Shape[1]}]";
            if (nested)
            {
                int groups = (blocks + 255) / 256;
                tensors[name + ".absmax"] = new RawTensor(SafetensorsDType.U8, [blocks], [.. Enumerable.Range(0, blocks).Select(b => (byte)(b % 2 == 0 ? 255 : 127))]);
                tensors[name + ".nested_absmax"] = Floats([.. Enumerable.Repeat(0.5f, groups)]);
                tensors[name + ".nested_quant_map"] = Floats(QuantPeft.Quant.CodeTables.DynamicSigned.ToArray());
                tensors[name + ".quant_state.bitsandbytes__nf4"] = JsonTensor(
                    $"{{\"quant_type\": \"nf4\", \"blocksize\": 64, \"dtype\": \"bfloat16\", \"shape\": {shape}, \"nested_blocksize\": 256, \"nested_dtype\": \"float32\", \"nested_offset\": 0.25}}");
            }
            else
            {
                tensors[name + ".absmax"] = Floats(scale);
                tensors[name + ".quant_state.bitsandbytes__nf4"] = JsonTensor($"{{\"quant_type\": \"nf4\", \"blocksize\": 64, \"dtype\": \"bfloat16\", \"shape\": {shape}}}");
            }
        }
        WriteAll(output, tensors);
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(model, "config.json")))!.AsObject();
        config["quantization_config"] = new JsonObject
        {
            ["quant_method"] = "bitsandbytes", ["load_in_4bit"] = true, ["load_in_8bit"] = false,
            ["bnb_4bit_quant_type"] = "nf4", ["bnb_4bit_use_double_quant"] = nested, ["bnb_4bit_compute_dtype"] = "bfloat16",
        };
        File.WriteAllText(Path.Combine(output, "config.json"), config.ToJsonString());
        File.Copy(Path.Combine(model, "qpeft-tokenizer.json"), Path.Combine(output, "qpeft-tokenizer.json"));
        return expected;
    }

    private static RawTensor Floats(float[] values)
    {
        var bytes = new byte[values.Length * 4];
        Buffer.BlockCopy(values, 0, bytes, 0, bytes.Length);
        return new RawTensor(SafetensorsDType.F32, [values.Length], bytes);
    }
}
