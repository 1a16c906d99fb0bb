using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using QuantPeft.Memory.Planning;
using QuantPeft.Quant;
using QuantPeft.Quant.Checkpoints;
using QuantPeft.Quant.LqLora;
using QuantPeft.Trainers.Adapters;
using QuantPeft.Trainers.Model;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Recipes;

/// <summary>
/// A model folder whose projection weights are already quantized, as its <c>config.json</c>'s
/// <c>quantization_config</c> declares: a bitsandbytes 4-bit checkpoint in Hugging Face layout (<c>quant_method:
/// "bitsandbytes"</c> with <c>load_in_4bit</c>, as transformers' <c>save_pretrained</c> and <c>qpeft quantize --format
/// nf4|fp4</c> write it) or an LQ-LoRA checkpoint (<c>quant_method: "lq-lora"</c>, <c>qpeft quantize --method lq-lora</c>).
/// The trainer loads its codes straight into the frozen bases (no dense round trip) and its other tensors as usual.
/// </summary>
public sealed class PrequantizedFolder
{
    private PrequantizedFolder(string folder, string configPath, WeightFormat weights)
    {
        Folder = folder;
        ConfigPath = configPath;
        Weights = weights;
    }

    /// <summary>The model folder.</summary>
    public string Folder { get; }

    /// <summary>Its <c>config.json</c>.</summary>
    public string ConfigPath { get; }

    /// <summary>The stored format: <see cref="WeightFormat.Nf4"/>, <see cref="WeightFormat.Fp4"/> or <see cref="WeightFormat.LqLora"/>.</summary>
    public WeightFormat Weights { get; }

    /// <summary>bitsandbytes: whether the block scales are double-quantized (<c>bnb_4bit_use_double_quant</c>).</summary>
    public bool DoubleQuant { get; private init; }

    /// <summary>LQ-LoRA: the average bits per quantized weight the allocator achieved (<c>average_bits</c>); 0 otherwise.</summary>
    public double LqLoraBits { get; private init; }

    /// <summary>LQ-LoRA: the budget the checkpoint was written for (<c>bits</c>); 0 otherwise.</summary>
    public double LqLoraBudget { get; private init; }

    /// <summary>LQ-LoRA: the rank of the stored factors L1, L2 (<c>rank</c>); 0 otherwise.</summary>
    public int LqLoraRank { get; private init; }

    /// <summary>LQ-LoRA: the configuration of every quantized projection by module path (e.g. <c>model.layers.0.mlp.up_proj</c>).</summary>
    public IReadOnlyDictionary<string, LqQuantConfig> LqLoraConfigs { get; private init; } = new Dictionary<string, LqQuantConfig>();

    /// <summary>The format as the <c>--weights</c> flag spells it (<c>nf4</c>, <c>lq-lora:2.938</c>).</summary>
    public string WeightsName => Knob.Name(Weights, LqLoraBits);

    /// <summary>The format for messages, e.g. <c>nf4 (bitsandbytes, double quant on)</c>.</summary>
    public string Describe() => Weights == WeightFormat.LqLora
        ? $"lq-lora (average {LqLoraBits.ToString("0.###", CultureInfo.InvariantCulture)} bits for a budget of {LqLoraBudget.ToString(CultureInfo.InvariantCulture)}, rank-{LqLoraRank} factors)"
        : $"{WeightsName} (bitsandbytes, double quant {(DoubleQuant ? "on" : "off")})";

    /// <summary>
    /// Reads the folder's <c>quantization_config</c>: null for a synthetic reference, a folder without a config (or with
    /// a config that is not JSON: reading the architecture reports that) and a dense folder.
    /// </summary>
    /// <exception cref="ModelException">The block is malformed, or declares a format the trainer does not read (bitsandbytes
    /// 8-bit, GPTQ, AWQ, …); the message names config.json and the field.</exception>
    public static PrequantizedFolder? Read(string model)
    {
        if (SyntheticModel.IsSynthetic(model)) return null;
        string configPath = Path.Combine(model, "config.json");
        if (!File.Exists(configPath)) return null;
        JsonObject? config;
        try
        {
            config = JsonNode.Parse(File.ReadAllText(configPath)) as JsonObject;
        }
        catch (JsonException)
        {
            return null;
        }
        if (config?["quantization_config"] is not JsonObject q) return null;
        string? method = q["quant_method"] is JsonValue m && m.TryGetValue(out string? text) ? text : null;
        try
        {
            return method switch
            {
                "bitsandbytes" => Bitsandbytes(model, configPath, config),
                LqLoraQuantizationConfig.Method => LqLora(model, configPath, q),
                _ => throw new ModelException(
                    $"{configPath}: quantization_config.quant_method {(method is null ? "is missing" : $"'{method}'")}: qpeft train reads bitsandbytes 4-bit (nf4, fp4) and lq-lora folders"),
            };
        }
        catch (QuantInputException e)
        {
            throw new ModelException(e.Message.StartsWith('\'') ? e.Message : $"{configPath}: {e.Message}");
        }
        catch (Exception e) when (e is InvalidOperationException or FormatException)
        {
            throw new ModelException($"{configPath}: quantization_config: {e.Message}");
        }
    }

    /// <summary>
    /// The linear factory whose bases receive the stored weights: 4-bit bases of the folder's format, or LQ-LoRA bases
    /// of each projection's stored configuration behind the hook that turns L1, L2 into the LoRA's start.
    /// </summary>
    /// <param name="rank">LoRA rank (LQ-LoRA: must be the factors' rank, see <see cref="PrequantizedOptions"/>).</param>
    /// <param name="scaling">LoRA scaling s (LQ-LoRA splits L1·L2 as B = L1/√s, A = L2/√s).</param>
    /// <param name="computeDType">Dtype of activations.</param>
    /// <param name="device">Where the bases live; null means the CPU.</param>
    public LinearFactory Factory(int rank, double scaling, ScalarType computeDType, Device? device = null) => Weights == WeightFormat.LqLora
        ? LqLoraPlan.Factory(LqLoraConfigs, ModelAdapters.AllLinear, rank, scaling, computeDType, device)
        : BaseWeights.Factory(Weights, DoubleQuant, computeDType, device);

    /// <summary>Opens the folder's weights as a source that hands the quantized ones over as stored; the caller disposes it.</summary>
    /// <exception cref="ModelException">The checkpoint's tensors do not match its quantization_config.</exception>
    internal ITensorSource Open() => Weights == WeightFormat.LqLora ? new LqLoraModelSource(Folder) : new BnbModelSource(Folder);

    private static PrequantizedFolder Bitsandbytes(string model, string configPath, JsonObject config)
    {
        var format = BnbQuantizationConfig.ReadFormat(config, configPath);
        if (format == CheckpointFormat.Int8)
            throw new ModelException($"{configPath}: quantization_config.load_in_8bit: qpeft train reads bitsandbytes 4-bit folders (nf4, fp4), not LLM.int8; train on the full-precision folder with --weights nf4 instead");
        bool dq = config["quantization_config"]!["bnb_4bit_use_double_quant"]?.GetValue<bool>() ?? false;
        return new PrequantizedFolder(model, configPath, format == CheckpointFormat.Fp4 ? WeightFormat.Fp4 : WeightFormat.Nf4) { DoubleQuant = dq };
    }

    private static PrequantizedFolder LqLora(string model, string configPath, JsonObject q)
    {
        double Number(string field) => q[field]?.GetValue<double>()
            ?? throw new ModelException($"{configPath}: quantization_config.{field} is missing");
        double rank = Number("rank");
        if (rank < 1 || rank != Math.Floor(rank))
            throw new ModelException($"{configPath}: quantization_config.rank: expected a positive integer, found {rank}");
        if (q["matrices"] is not JsonObject matrices || matrices.Count == 0)
            throw new ModelException($"{configPath}: quantization_config.matrices: expected the configuration of every quantized projection, found none");
        var configs = new Dictionary<string, LqQuantConfig>(StringComparer.Ordinal);
        foreach (var (name, node) in matrices)
        {
            if (!name.EndsWith(".weight", StringComparison.Ordinal))
                throw new ModelException($"{configPath}: quantization_config.matrices: '{name}' is not a weight name (….weight)");
            configs[name[..^".weight".Length]] = LqLoraQuantizationConfig.ParseConfig(node, $"{configPath}: quantization_config.matrices.{name}");
        }
        return new PrequantizedFolder(model, configPath, WeightFormat.LqLora)
        {
            LqLoraBits = Number("average_bits"),
            LqLoraBudget = Number("bits"),
            LqLoraRank = (int)rank,
            LqLoraConfigs = configs,
        };
    }
}
