using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Json.Nodes;
using QuantPeft.Formats.Safetensors;
using QuantPeft.Quant.Codecs;

namespace QuantPeft.Quant.Checkpoints;

/// <summary>What <see cref="CheckpointQuantizer.Run"/> wrote.</summary>
/// <param name="OutputFolder">The finished folder.</param>
/// <param name="QuantizedTensors">Number of weights quantized.</param>
/// <param name="CopiedTensors">Number of tensors copied unchanged.</param>
/// <param name="InputBytes">Tensor bytes read.</param>
/// <param name="OutputBytes">Tensor bytes written.</param>
public sealed record QuantizeSummary(string OutputFolder, int QuantizedTensors, int CopiedTensors, long InputBytes, long OutputBytes);

/// <summary>
/// Writes a Hugging Face model folder as a bitsandbytes-quantized checkpoint that transformers loads:
/// the tensor names and <c>quantization_config</c> it writes itself, sharded safetensors, the config and
/// tokenizer files copied.
/// </summary>
/// <remarks>
/// Streaming: one tensor is read, quantized once, and its serialized pieces go to a spool file; the sharded
/// writer then copies every piece from the spool or the input. So memory stays at the largest tensor plus its
/// quantized form, whatever order the writer puts tensors in. Everything is written into a temporary sibling
/// folder that is renamed at the end and deleted on any error: no partial output folder is ever left.
/// </remarks>
public static class CheckpointQuantizer
{
    /// <summary>Files copied from the model folder when present (<c>qpeft-tokenizer.json</c> declares the byte-level tokenizer of the demo model).</summary>
    public static IReadOnlyList<string> SideFiles { get; } =
        ["tokenizer.json", "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json", "vocab.json", "merges.txt",
         "qpeft-tokenizer.json"];

    /// <summary>Quantizes <paramref name="modelFolder"/> into <paramref name="outputFolder"/>.</summary>
    /// <exception cref="QuantInputException">Missing config, an output folder that is not empty, a quantized tensor that is not a 2-D float matrix.</exception>
    /// <exception cref="SafetensorsFormatException">The checkpoint is malformed.</exception>
    public static QuantizeSummary Run(string modelFolder, string outputFolder, QuantizeOptions options, long maxShardBytes = 5_000_000_000L, Action<string, int, int>? progress = null)
    {
        if (!Directory.Exists(modelFolder)) throw new QuantInputException($"model folder '{modelFolder}' does not exist");
        string configPath = Path.Combine(modelFolder, "config.json");
        if (!File.Exists(configPath)) throw new QuantInputException($"'{modelFolder}' has no config.json; a model folder needs its config");
        string output = Path.GetFullPath(outputFolder);
        if (File.Exists(output) || (Directory.Exists(output) && Directory.EnumerateFileSystemEntries(output).Any()))
            throw new QuantInputException($"output '{outputFolder}' already exists and is not an empty folder");

        using var checkpoint = SafetensorsCheckpoint.Open(modelFolder);
        CheckQuantizable(checkpoint, options);
        JsonObject config = JsonNode.Parse(File.ReadAllText(configPath)) as JsonObject
            ?? throw new QuantInputException($"'{configPath}' is not a JSON object");

        string temp = output.TrimEnd(Path.DirectorySeparatorChar) + ".qpeft-tmp-" + Guid.NewGuid().ToString("N")[..8];
        Directory.CreateDirectory(temp);
        try
        {
            var summary = WriteInto(temp, checkpoint, options, maxShardBytes, progress);
            config["quantization_config"] = BnbQuantizationConfig.Create(options);
            File.WriteAllText(Path.Combine(temp, "config.json"), config.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
            foreach (string side in SideFiles)
            {
                string src = Path.Combine(modelFolder, side);
                if (File.Exists(src)) File.Copy(src, Path.Combine(temp, side));
            }
            if (Directory.Exists(output)) Directory.Delete(output);
            Directory.Move(temp, output);
            return summary with { OutputFolder = output };
        }
        catch
        {
            if (Directory.Exists(temp)) Directory.Delete(temp, recursive: true);
            throw;
        }
    }

    private static void CheckQuantizable(SafetensorsCheckpoint checkpoint, QuantizeOptions options)
    {
        foreach (SafetensorsTensorInfo t in checkpoint.Tensors.Where(t => options.Quantizes(t.Name)))
        {
            if (t.Rank != 2)
                throw new QuantInputException($"tensor '{t.Name}' has shape {t.ShapeText}; a quantized weight must be a 2-D matrix");
            if (t.DType is not (SafetensorsDType.F32 or SafetensorsDType.F16 or SafetensorsDType.BF16))
                throw new QuantInputException($"tensor '{t.Name}' has dtype {t.DType}; only F32, F16 and BF16 weights can be quantized");
        }
    }

    private static QuantizeSummary WriteInto(string temp, SafetensorsCheckpoint checkpoint, QuantizeOptions options, long maxShardBytes, Action<string, int, int>? progress)
    {
        using var spool = new SpooledTensorEntries(temp);
        int quantized = 0, copied = 0, index = 0;
        long inputBytes = 0;
        foreach (SafetensorsTensorInfo t in checkpoint.Tensors)
        {
            progress?.Invoke(t.Name, ++index, checkpoint.Tensors.Count);
            inputBytes += t.ByteLength;
            if (!options.Quantizes(t.Name))
            {
                spool.AddCopy(checkpoint, t);
                copied++;
                continue;
            }
            spool.AddPieces(t.Name[..^".weight".Length], Quantize(checkpoint, t, options));
            quantized++;
        }
        SafetensorsShardedWriteResult result = spool.WriteShards(temp, maxShardBytes);
        return new QuantizeSummary(temp, quantized, copied, inputBytes, result.TotalSize);
    }

    private static IReadOnlyList<SerializedTensor> Quantize(SafetensorsCheckpoint checkpoint, SafetensorsTensorInfo t, QuantizeOptions options)
    {
        long[] shape = t.Shape;
        if (options.Format == CheckpointFormat.Int8)
        {
            float[] values = checkpoint.ReadFloat32(t.Name);
            var (codes, scales) = Int8RowCodec.Quantize(values, shape[0], shape[1]);
            return
            [
                new SerializedTensor("weight", "I8", shape, MemoryMarshal.AsBytes(codes.AsSpan()).ToArray()),
                new SerializedTensor("SCB", "F32", [shape[0]], MemoryMarshal.AsBytes(scales.AsSpan()).ToArray()),
                new SerializedTensor("weight_format", "U8", [], [0]),
            ];
        }
        FourBitType type = options.Format == CheckpointFormat.Fp4 ? FourBitType.Fp4 : FourBitType.Nf4;
        byte[] raw = checkpoint.ReadBytes(t.Name);
        PackedFourBitTensor q = t.DType switch
        {
            SafetensorsDType.BF16 => FourBitBufferQuantizer.Quantize(MemoryMarshal.Cast<byte, ushort>(raw), shape, type, options.BlockSize, options.DoubleQuant),
            SafetensorsDType.F16 => FourBitBufferQuantizer.Quantize(MemoryMarshal.Cast<byte, Half>(raw), shape, type, options.BlockSize, options.DoubleQuant),
            _ => FourBitBufferQuantizer.Quantize(MemoryMarshal.Cast<byte, float>(raw), shape, type, options.BlockSize, options.DoubleQuant),
        };
        return QuantStateSerializer.ToTensors(q.Packed, q.State);
    }
}
