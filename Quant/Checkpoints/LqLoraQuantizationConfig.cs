using System.Text.Json.Nodes;
using QuantPeft.Quant.LqLora;

namespace QuantPeft.Quant.Checkpoints;

/// <summary>What an LQ-LoRA checkpoint records about one quantized matrix.</summary>
/// <param name="Config">The configuration the allocator chose.</param>
/// <param name="Error">‖W − Q − L1·L2‖_F of the stored values.</param>
/// <param name="Iterations">Decomposition rounds that ran.</param>
public sealed record LqMatrixRecord(LqQuantConfig Config, double Error, int Iterations);

/// <summary>
/// The <c>quantization_config</c> block of an LQ-LoRA checkpoint's <c>config.json</c> (<c>quant_method:
/// "lq-lora"</c>): the budget, rank and block size asked for, what the allocator achieved, and the chosen
/// configuration of every matrix. Also the per-configuration JSON used in each tensor's quant state.
/// </summary>
public static class LqLoraQuantizationConfig
{
    /// <summary>The <c>quant_method</c> value.</summary>
    public const string Method = "lq-lora";

    /// <summary>The block for a finished run.</summary>
    public static JsonObject Create(LqLoraOptions options, BitAllocation allocation, IReadOnlyDictionary<string, LqMatrixRecord> matrices)
    {
        var perMatrix = new JsonObject();
        foreach (var (name, record) in matrices)
        {
            JsonObject entry = ConfigJson(record.Config);
            entry["error"] = record.Error;
            entry["iterations"] = record.Iterations;
            perMatrix[name] = entry;
        }
        return new JsonObject
        {
            ["quant_method"] = Method,
            ["bits"] = options.BitsBudget,
            ["rank"] = options.Rank,
            ["blocksize"] = options.BlockSize,
            ["max_iterations"] = options.MaxIterations,
            ["seed"] = options.Seed,
            ["average_bits"] = allocation.AverageBitsPerParameter,
            ["allocation_exact"] = allocation.IsExact,
            ["lora_factors_dtype"] = "bfloat16",
            ["matrices"] = perMatrix,
        };
    }

    /// <summary>One configuration as JSON: bits, scale_bits, second_level_dtype, blocksize, nested_blocksize, bits_per_parameter.</summary>
    public static JsonObject ConfigJson(LqQuantConfig c) => new()
    {
        ["bits"] = c.Bits,
        ["scale_bits"] = c.ScaleBits,
        ["second_level_dtype"] = DTypeName(c.SecondLevel),
        ["blocksize"] = c.BlockSize0,
        ["nested_blocksize"] = c.BlockSize1,
        ["bits_per_parameter"] = c.BitsPerParameter,
    };

    /// <summary>Parses <see cref="ConfigJson"/>'s output.</summary>
    /// <exception cref="QuantInputException">A field is missing or out of range; the message names <paramref name="where"/>.</exception>
    public static LqQuantConfig ParseConfig(JsonNode? node, string where)
    {
        try
        {
            if (node is not JsonObject o) throw new QuantInputException($"{where}: expected a JSON object");
            int bits = Int(o, "bits", where), scaleBits = Int(o, "scale_bits", where);
            int b0 = Int(o, "blocksize", where), b1 = Int(o, "nested_blocksize", where);
            string dtype = o["second_level_dtype"]?.GetValue<string>() ?? throw new QuantInputException($"{where}: field 'second_level_dtype' is missing");
            if (bits is < 2 or > 8 || scaleBits is < 1 or > 8 || !PowerOfTwo(b0) || !PowerOfTwo(b1))
                throw new QuantInputException(
                    $"{where}: expected bits in 2..8, scale_bits in 1..8 and power-of-two block sizes; found bits {bits}, scale_bits {scaleBits}, blocksize {b0}, nested_blocksize {b1}");
            return new LqQuantConfig(bits, scaleBits, ParseDType(dtype, where), b0, b1);
        }
        catch (Exception e) when (e is InvalidOperationException or FormatException)
        {
            throw new QuantInputException($"{where}: {e.Message}");
        }
    }

    /// <summary>The JSON / torch name of a second-level storage type.</summary>
    public static string DTypeName(SecondLevelStorage s) => s switch
    {
        SecondLevelStorage.BFloat16 => "bfloat16",
        SecondLevelStorage.Float16 => "float16",
        _ => "float32",
    };

    private static SecondLevelStorage ParseDType(string name, string where) => name switch
    {
        "bfloat16" => SecondLevelStorage.BFloat16,
        "float16" => SecondLevelStorage.Float16,
        "float32" => SecondLevelStorage.Float32,
        _ => throw new QuantInputException($"{where}: second_level_dtype '{name}' is not one of bfloat16, float16, float32"),
    };

    private static int Int(JsonObject o, string field, string where) =>
        o[field]?.GetValue<int>() ?? throw new QuantInputException($"{where}: field '{field}' is missing");

    private static bool PowerOfTwo(int v) => v > 0 && (v & (v - 1)) == 0;
}
