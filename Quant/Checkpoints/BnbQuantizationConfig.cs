using System.Text.Json.Nodes;
using QuantPeft.Quant.Codecs;

namespace QuantPeft.Quant.Checkpoints;

/// <summary>
/// The <c>quantization_config</c> block transformers writes into <c>config.json</c> for a bitsandbytes model
/// (<c>BitsAndBytesConfig.to_dict()</c>), and reading it back.
/// </summary>
public static class BnbQuantizationConfig
{
    /// <summary>The block for <paramref name="options"/>.</summary>
    public static JsonObject Create(QuantizeOptions options, string computeDtype = "bfloat16")
    {
        bool fourBit = options.Format != CheckpointFormat.Int8;
        return new JsonObject
        {
            ["_load_in_4bit"] = fourBit,
            ["_load_in_8bit"] = !fourBit,
            ["bnb_4bit_compute_dtype"] = computeDtype,
            ["bnb_4bit_quant_storage"] = "uint8",
            ["bnb_4bit_quant_type"] = options.Format == CheckpointFormat.Fp4 ? "fp4" : "nf4",
            ["bnb_4bit_use_double_quant"] = fourBit && options.DoubleQuant,
            ["llm_int8_enable_fp32_cpu_offload"] = false,
            ["llm_int8_has_fp16_weight"] = false,
            ["llm_int8_skip_modules"] = options.QuantizeLmHead ? null : new JsonArray("lm_head"),
            ["llm_int8_threshold"] = 6.0,
            ["load_in_4bit"] = fourBit,
            ["load_in_8bit"] = !fourBit,
            ["quant_method"] = "bitsandbytes",
        };
    }

    /// <summary>Reads the format from a parsed <c>config.json</c>; null when it has no bitsandbytes block.</summary>
    /// <exception cref="QuantInputException">The block exists but is not a bitsandbytes 4-bit or 8-bit config.</exception>
    public static CheckpointFormat? ReadFormat(JsonObject config, string configPath)
    {
        if (config["quantization_config"] is not JsonObject q) return null;
        if (q["quant_method"]?.GetValue<string>() != "bitsandbytes")
            throw new QuantInputException($"'{configPath}': quantization_config.quant_method is '{q["quant_method"]}', expected 'bitsandbytes'");
        if (q["load_in_8bit"]?.GetValue<bool>() == true) return CheckpointFormat.Int8;
        if (q["load_in_4bit"]?.GetValue<bool>() != true)
            throw new QuantInputException($"'{configPath}': quantization_config has neither load_in_4bit nor load_in_8bit set");
        return q["bnb_4bit_quant_type"]?.GetValue<string>() == "fp4" ? CheckpointFormat.Fp4 : CheckpointFormat.Nf4;
    }
}
