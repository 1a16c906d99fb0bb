using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using QuantPeft.Quant.Codecs;
using QuantPeft.Quant.LqLora;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantPeft.Quant.Checkpoints;

/// <summary>
/// Converts one LQ-LoRA projection (quantized Q plus bf16 factors) to and from the tensors of its checkpoint
/// (docs/formats.md, "LQ-LoRA checkpoint"). Suffixes are relative to the module prefix <c>P.</c>.
/// </summary>
public static class LqLoraSerializer
{
    /// <summary>Suffix of the per-weight JSON state.</summary>
    public const string StateSuffix = "weight.quant_state.lq_lora";

    /// <summary>Suffix of L1 (out × r).</summary>
    public const string L1Suffix = "lq_lora.L1";

    /// <summary>Suffix of L2 (r × in).</summary>
    public const string L2Suffix = "lq_lora.L2";

    /// <summary>The checkpoint tensors of a stored decomposition (copied to the host).</summary>
    public static IReadOnlyList<SerializedTensor> ToTensors(LqCodes q, Tensor l1, Tensor l2)
    {
        LqQuantConfig c = q.Config;
        byte[] codes = HostBytes(q.Codes);
        byte[] scaleCodes = HostBytes(q.ScaleCodes);
        using var second = q.SecondLevel.to(SecondLevelType(c.SecondLevel));
        JsonObject state = LqLoraQuantizationConfig.ConfigJson(c);
        state["shape"] = new JsonArray([.. q.Shape.Select(d => (JsonNode)d)]);
        byte[] json = Encoding.UTF8.GetBytes(state.ToJsonString());
        return
        [
            new SerializedTensor("weight", "U8", [BitPacking.PackedLength(codes.Length, c.Bits)], BitPacking.Pack(codes, c.Bits)),
            new SerializedTensor("weight.absmax", "U8", [BitPacking.PackedLength(scaleCodes.Length, c.ScaleBits)], BitPacking.Pack(scaleCodes, c.ScaleBits)),
            new SerializedTensor("weight.absmax_offset", "F32", [1], BitConverter.GetBytes(q.Offset)),
            new SerializedTensor("weight.nested_absmax", SafetensorsName(c.SecondLevel), [second.numel()], HostBytes(second)),
            new SerializedTensor("weight.quant_map", "F32", [1L << c.Bits], MemoryMarshal.AsBytes(CodeTables.NormalFloat(c.Bits)).ToArray()),
            new SerializedTensor(StateSuffix, "U8", [json.Length], json),
            new SerializedTensor(L1Suffix, "BF16", l1.shape, HostBytes(l1)),
            new SerializedTensor(L2Suffix, "BF16", l2.shape, HostBytes(l2)),
        ];
    }

    /// <summary>
    /// Rebuilds Q and the factors (CPU tensors) from the tensors of module <paramref name="prefix"/>, keyed by suffix.
    /// </summary>
    /// <exception cref="QuantInputException">A tensor is missing, has the wrong dtype or size, or the state is inconsistent.</exception>
    public static (LqCodes Quantized, Tensor L1, Tensor L2) FromTensors(string prefix, IReadOnlyDictionary<string, SerializedTensor> bySuffix)
    {
        SerializedTensor stateTensor = Require(bySuffix, prefix, StateSuffix, "U8");
        string where = $"tensor '{prefix}.{StateSuffix}'";
        JsonObject state;
        try
        {
            state = JsonNode.Parse(stateTensor.Data) as JsonObject ?? throw new QuantInputException($"{where}: expected a JSON object");
        }
        catch (JsonException e)
        {
            throw new QuantInputException($"{where}: not valid JSON ({e.Message})");
        }
        LqQuantConfig c = LqLoraQuantizationConfig.ParseConfig(state, where);
        long[] shape = state["shape"] is JsonArray arr && arr.Count == 2 ? [.. arr.Select(d => d!.GetValue<long>())]
            : throw new QuantInputException($"{where}: field 'shape' must be a list of two dimensions");
        long n = shape[0] * shape[1];
        long groupSize = (long)c.BlockSize0 * c.BlockSize1;
        if (shape[0] <= 0 || shape[1] <= 0 || n % groupSize != 0)
            throw new QuantInputException($"{where}: shape [{shape[0]}, {shape[1]}] is not a positive multiple of B0·B1 = {groupSize}");
        long blocks = n / c.BlockSize0, groups = blocks / c.BlockSize1;

        byte[] codes = BitPacking.Unpack(Require(bySuffix, prefix, "weight", "U8").Data, c.Bits, n, prefix + ".weight");
        byte[] scaleCodes = BitPacking.Unpack(Require(bySuffix, prefix, "weight.absmax", "U8").Data, c.ScaleBits, blocks, prefix + ".weight.absmax");
        byte[] offsetBytes = Require(bySuffix, prefix, "weight.absmax_offset", "F32").Data;
        if (offsetBytes.Length != 4) throw new QuantInputException($"tensor '{prefix}.weight.absmax_offset': expected one float32, found {offsetBytes.Length} bytes");
        SerializedTensor second = Require(bySuffix, prefix, "weight.nested_absmax", SafetensorsName(c.SecondLevel));
        int secondBytes = c.SecondLevel == SecondLevelStorage.Float32 ? 4 : 2;
        if (second.Data.Length != groups * secondBytes)
            throw new QuantInputException($"tensor '{prefix}.weight.nested_absmax': expected {groups} values, found {second.Data.Length / secondBytes}");
        SerializedTensor l1 = Require(bySuffix, prefix, L1Suffix, "BF16"), l2 = Require(bySuffix, prefix, L2Suffix, "BF16");
        if (l1.Shape.Count != 2 || l2.Shape.Count != 2 || l1.Shape[0] != shape[0] || l2.Shape[1] != shape[1] || l1.Shape[1] != l2.Shape[0])
            throw new QuantInputException(
                $"tensors '{prefix}.{L1Suffix}' [{string.Join(", ", l1.Shape)}] and '{prefix}.{L2Suffix}' [{string.Join(", ", l2.Shape)}] " +
                $"do not factor a [{shape[0]}, {shape[1]}] matrix as (out × r)·(r × in)");

        using var scope = torch.NewDisposeScope();
        var secondTensor = FromBytes(second.Data, [groups], SecondLevelType(c.SecondLevel)).to(ScalarType.Float32);
        var q = new LqCodes(c, shape, FromBytes(codes, [n], ScalarType.Byte), FromBytes(scaleCodes, [blocks], ScalarType.Byte),
            BitConverter.ToSingle(offsetBytes), secondTensor, prefix + ".weight");
        var l1Tensor = FromBytes(l1.Data, [.. l1.Shape], ScalarType.BFloat16).DetachFromDisposeScope();
        var l2Tensor = FromBytes(l2.Data, [.. l2.Shape], ScalarType.BFloat16).DetachFromDisposeScope();
        return (q, l1Tensor, l2Tensor);
    }

    private static SerializedTensor Require(IReadOnlyDictionary<string, SerializedTensor> bySuffix, string prefix, string suffix, string dtype)
    {
        if (!bySuffix.TryGetValue(suffix, out SerializedTensor? t))
            throw new QuantInputException($"tensor '{prefix}.{suffix}' is missing from the LQ-LoRA checkpoint");
        if (t.DType != dtype)
            throw new QuantInputException($"tensor '{prefix}.{suffix}': expected dtype {dtype}, found {t.DType}");
        return t;
    }

    private static byte[] HostBytes(Tensor t)
    {
        using var host = t.cpu().contiguous();
        return host.bytes.ToArray();
    }

    private static Tensor FromBytes(byte[] data, long[] shape, ScalarType dtype)
    {
        var t = torch.empty(shape, dtype);
        data.AsSpan().CopyTo(t.bytes);
        return t;
    }

    private static ScalarType SecondLevelType(SecondLevelStorage s) => s switch
    {
        SecondLevelStorage.BFloat16 => ScalarType.BFloat16,
        SecondLevelStorage.Float16 => ScalarType.Float16,
        _ => ScalarType.Float32,
    };

    private static string SafetensorsName(SecondLevelStorage s) => s switch
    {
        SecondLevelStorage.BFloat16 => "BF16",
        SecondLevelStorage.Float16 => "F16",
        _ => "F32",
    };
}
