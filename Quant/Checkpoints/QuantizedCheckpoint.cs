using System.Runtime.InteropServices;
using System.Text.Json.Nodes;
using QuantPeft.Formats.Safetensors;
using QuantPeft.Quant.Codecs;

namespace QuantPeft.Quant.Checkpoints;

/// <summary>
/// Reads a bitsandbytes-quantized Hugging Face checkpoint (written by transformers or by
/// <see cref="CheckpointQuantizer"/>): which weights are quantized, their state, and their dequantized values.
/// </summary>
public sealed class QuantizedCheckpoint : IDisposable
{
    private readonly SafetensorsCheckpoint _checkpoint;

    private QuantizedCheckpoint(SafetensorsCheckpoint checkpoint, CheckpointFormat format, IReadOnlyList<string> weights)
    {
        _checkpoint = checkpoint;
        Format = format;
        QuantizedWeights = weights;
    }

    /// <summary>The checkpoint's format (from <c>quantization_config</c>).</summary>
    public CheckpointFormat Format { get; }

    /// <summary>Names (<c>….weight</c>) of the quantized weights.</summary>
    public IReadOnlyList<string> QuantizedWeights { get; }

    /// <summary>The underlying tensors (for the unquantized ones).</summary>
    public SafetensorsCheckpoint Tensors => _checkpoint;

    /// <summary>Opens a quantized model folder.</summary>
    /// <exception cref="QuantInputException">No config.json, or no bitsandbytes quantization_config in it.</exception>
    public static QuantizedCheckpoint Open(string folder)
    {
        string configPath = Path.Combine(folder, "config.json");
        if (!File.Exists(configPath)) throw new QuantInputException($"'{folder}' has no config.json");
        var config = JsonNode.Parse(File.ReadAllText(configPath)) as JsonObject ?? throw new QuantInputException($"'{configPath}' is not a JSON object");
        CheckpointFormat format = BnbQuantizationConfig.ReadFormat(config, configPath)
            ?? throw new QuantInputException($"'{configPath}' has no quantization_config: not a quantized checkpoint");
        var checkpoint = SafetensorsCheckpoint.Open(folder);
        string marker = format == CheckpointFormat.Int8 ? ".SCB" : ".weight.quant_state.bitsandbytes__";
        var weights = checkpoint.Tensors.Select(t => t.Name).Where(n => n.Contains(marker, StringComparison.Ordinal))
            .Select(n => n[..n.IndexOf(marker, StringComparison.Ordinal)] + ".weight").Distinct().ToArray();
        return new QuantizedCheckpoint(checkpoint, format, weights);
    }

    /// <summary>The packed codes and state of a 4-bit weight.</summary>
    /// <exception cref="QuantInputException">The weight's tensors are missing or inconsistent.</exception>
    public PackedFourBitTensor FourBit(string weightName)
    {
        string prefix = weightName[..^"weight".Length];
        var pieces = _checkpoint.Tensors.Where(t => t.Name.StartsWith(prefix + "weight", StringComparison.Ordinal))
            .Select(t => new SerializedTensor(t.Name[prefix.Length..], t.DType.HeaderName(), t.Shape, _checkpoint.ReadBytes(t.Name)));
        var (packed, state) = QuantStateSerializer.FromTensors(pieces);
        return new PackedFourBitTensor(packed, state);
    }

    /// <summary>The dequantized weight as row-major f32.</summary>
    public float[] Dequantize(string weightName)
    {
        if (Format == CheckpointFormat.Int8)
        {
            string prefix = weightName[..^"weight".Length];
            byte[] codes = _checkpoint.ReadBytes(weightName);
            float[] scales = _checkpoint.ReadFloat32(prefix + "SCB");
            var output = new float[codes.Length];
            Int8RowCodec.Dequantize(MemoryMarshal.Cast<byte, sbyte>(codes), scales, output);
            return output;
        }
        PackedFourBitTensor q = FourBit(weightName);
        var values = new float[q.State.ElementCount];
        FourBitBufferQuantizer.Dequantize(q, values);
        return values;
    }

    /// <inheritdoc />
    public void Dispose() => _checkpoint.Dispose();
}
