using System.Text.Json;
using System.Text.Json.Nodes;
using QuantPeft.Formats.Safetensors;
using QuantPeft.Quant.Codecs;
using QuantPeft.Quant.LqLora;
using TorchSharp;
using static TorchSharp.torch;
using QuantPeft.Quant.Torch;

namespace QuantPeft.Quant.Checkpoints;

/// <summary>
/// One projection of an LQ-LoRA checkpoint: the quantized residual Q and the bf16 factors with
/// <c>W ≈ Dequantize(Q) + L1·L2</c>. A trainer uses Q as the frozen base and the factors as the adapter's
/// initial value (<c>B = L1/√s</c>, <c>A = L2/√s</c> for LoRA scaling s). Owns its tensors (CPU).
/// </summary>
/// <param name="WeightName">The weight's name, <c>….weight</c>.</param>
/// <param name="Quantized">Q in stored form.</param>
/// <param name="L1">(out × r), bfloat16.</param>
/// <param name="L2">(r × in), bfloat16.</param>
public sealed record LqLoraProjection(string WeightName, LqCodes Quantized, Tensor L1, Tensor L2) : IDisposable
{
    /// <summary><c>Dequantize(Q) + L1·L2</c> in float32: the weight the checkpoint stands for.</summary>
    public Tensor Reconstruct()
    {
        using var scope = torch.NewDisposeScope();
        var q = Quantized.Dequantize();
        return q.AddInPlace(L1.to(ScalarType.Float32).matmul(L2.to(ScalarType.Float32))).MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    public void Dispose()
    {
        Quantized.Dispose();
        L1.Dispose();
        L2.Dispose();
    }
}

/// <summary>
/// Reads a checkpoint written by <c>qpeft quantize --method lq-lora</c> (docs/formats.md, "LQ-LoRA checkpoint"):
/// the run's budget and rank, the configuration chosen per matrix, and per projection Q with its factors.
/// </summary>
public sealed class LqLoraCheckpoint : IDisposable
{
    private readonly SafetensorsCheckpoint _checkpoint;

    private LqLoraCheckpoint(SafetensorsCheckpoint checkpoint, JsonObject q, string configPath)
    {
        _checkpoint = checkpoint;
        BitsBudget = Number(q, "bits", configPath);
        AverageBits = Number(q, "average_bits", configPath);
        Rank = (int)Number(q, "rank", configPath);
        if (q["matrices"] is not JsonObject matrices)
            throw new QuantInputException($"'{configPath}': quantization_config.matrices is missing or not an object");
        var configs = new Dictionary<string, LqQuantConfig>();
        foreach (var (name, node) in matrices)
        {
            configs[name] = LqLoraQuantizationConfig.ParseConfig(node, $"'{configPath}': quantization_config.matrices.{name}");
            if (!checkpoint.Contains(name[..^"weight".Length] + LqLoraSerializer.StateSuffix))
                throw new QuantInputException($"'{configPath}' lists '{name}' but the checkpoint has no '{name}.quant_state.lq_lora' tensor");
        }
        Configs = configs;
    }

    /// <summary>The average bit budget the run was given.</summary>
    public double BitsBudget { get; }

    /// <summary>The average bits per quantized weight the allocator achieved (≤ <see cref="BitsBudget"/>).</summary>
    public double AverageBits { get; }

    /// <summary>Rank of every L1/L2 pair.</summary>
    public int Rank { get; }

    /// <summary>The chosen configuration per quantized weight name, as <c>config.json</c> records it.</summary>
    public IReadOnlyDictionary<string, LqQuantConfig> Configs { get; }

    /// <summary>Names (<c>….weight</c>) of the quantized projections.</summary>
    public IEnumerable<string> Projections => Configs.Keys;

    /// <summary>The underlying tensors (for the copied, unquantized ones).</summary>
    public SafetensorsCheckpoint Tensors => _checkpoint;

    /// <summary>Opens an LQ-LoRA model folder.</summary>
    /// <exception cref="QuantInputException">No config.json, or its quantization_config is not an LQ-LoRA block.</exception>
    public static LqLoraCheckpoint Open(string folder)
    {
        string configPath = Path.Combine(folder, "config.json");
        if (!File.Exists(configPath)) throw new QuantInputException($"'{folder}' has no config.json");
        JsonObject config;
        try
        {
            config = JsonNode.Parse(File.ReadAllText(configPath)) as JsonObject ?? throw new QuantInputException($"'{configPath}' is not a JSON object");
        }
        catch (JsonException e)
        {
            throw new QuantInputException($"'{configPath}' is not valid JSON ({e.Message})");
        }
        if (config["quantization_config"] is not JsonObject q || q["quant_method"]?.GetValue<string>() != LqLoraQuantizationConfig.Method)
            throw new QuantInputException($"'{configPath}': quantization_config.quant_method is not '{LqLoraQuantizationConfig.Method}': not an LQ-LoRA checkpoint");
        var checkpoint = SafetensorsCheckpoint.Open(folder);
        try
        {
            return new LqLoraCheckpoint(checkpoint, q, configPath);
        }
        catch
        {
            checkpoint.Dispose();
            throw;
        }
    }

    /// <summary>Reads one projection: Q (codes, scales) and L1, L2, on the CPU.</summary>
    /// <exception cref="QuantInputException">Unknown name, missing or inconsistent tensors, or a state that disagrees with config.json.</exception>
    public LqLoraProjection Read(string weightName)
    {
        if (!Configs.TryGetValue(weightName, out LqQuantConfig? expected))
            throw new QuantInputException($"'{weightName}' is not a quantized projection of this LQ-LoRA checkpoint");
        string prefix = weightName[..^".weight".Length];
        var pieces = new Dictionary<string, SerializedTensor>();
        foreach (string suffix in new[] { "weight", "weight.absmax", "weight.absmax_offset", "weight.nested_absmax", LqLoraSerializer.StateSuffix, LqLoraSerializer.L1Suffix, LqLoraSerializer.L2Suffix })
        {
            string name = prefix + "." + suffix;
            if (!_checkpoint.TryGetTensor(name, out SafetensorsTensorInfo info)) continue;
            pieces[suffix] = new SerializedTensor(suffix, info.DType.HeaderName(), info.Shape, _checkpoint.ReadBytes(name));
        }
        var (quantized, l1, l2) = LqLoraSerializer.FromTensors(prefix, pieces);
        if (quantized.Config != expected)
        {
            quantized.Dispose();
            l1.Dispose();
            l2.Dispose();
            throw new QuantInputException($"tensor '{prefix}.{LqLoraSerializer.StateSuffix}' says {quantized.Config} but config.json says {expected}");
        }
        return new LqLoraProjection(weightName, quantized, l1, l2);
    }

    /// <inheritdoc />
    public void Dispose() => _checkpoint.Dispose();

    private static double Number(JsonObject q, string field, string configPath)
    {
        try
        {
            return q[field]?.GetValue<double>() ?? throw new QuantInputException($"'{configPath}': quantization_config.{field} is missing");
        }
        catch (Exception e) when (e is InvalidOperationException or FormatException)
        {
            throw new QuantInputException($"'{configPath}': quantization_config.{field} is not a number");
        }
    }
}
