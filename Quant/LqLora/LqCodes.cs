using TorchSharp;
using static TorchSharp.torch;
using QuantPeft.Quant.Torch;

namespace QuantPeft.Quant.LqLora;

/// <summary>
/// A matrix quantized under an <see cref="LqQuantConfig"/>, as the LQ-LoRA checkpoint stores it but unpacked:
/// one NF-b code index per weight (b = 2..8), one b0-bit first-level scale code per block, the global scale
/// offset and the second-level scales. Owns its tensors (all on the device the matrix was quantized on).
/// <see cref="LqQuantizedMatrix"/> is the packed in-memory form the trainer decodes by row slabs (NF2..NF4);
/// this type is the exchange form between the quantizer and the checkpoint writer/reader.
/// </summary>
/// <remarks>
/// Decoding (<see cref="Dequantize"/>): for group g, block k, element e,
/// <c>step_g = max(s3_g, 1e-38) / (2^b0 − 1)</c>, <c>scale = scaleCode·step_g + offset</c>,
/// <c>value = NF_b[code] · scale</c>, all in float32. The quantizer derives its codes from exactly these scales,
/// so <see cref="LqQuantizer.FakeQuantize"/> equals <c>Quantize(...).Dequantize()</c> bit for bit.
/// </remarks>
public sealed class LqCodes : IDisposable
{
    /// <summary>Takes ownership of the given tensors (detached from any dispose scope).</summary>
    /// <exception cref="QuantInputException">Tensor sizes do not match the shape and configuration.</exception>
    public LqCodes(LqQuantConfig config, long[] shape, Tensor codes, Tensor scaleCodes, float offset, Tensor secondLevel, string name = "matrix")
    {
        long n = shape.Aggregate(1L, (a, b) => a * b);
        long blocks = n / config.BlockSize0, groups = blocks / config.BlockSize1;
        if (n % ((long)config.BlockSize0 * config.BlockSize1) != 0 || codes.numel() != n || scaleCodes.numel() != blocks || secondLevel.numel() != groups)
            throw new QuantInputException(
                $"'{name}': shape [{string.Join(", ", shape)}] under {config} needs {n} codes, {blocks} scale codes and {groups} " +
                $"second-level scales; found {codes.numel()}, {scaleCodes.numel()} and {secondLevel.numel()}");
        Config = config;
        Shape = shape;
        Codes = codes.DetachFromDisposeScope();
        ScaleCodes = scaleCodes.DetachFromDisposeScope();
        Offset = offset;
        SecondLevel = secondLevel.DetachFromDisposeScope();
    }

    /// <summary>The quantization configuration.</summary>
    public LqQuantConfig Config { get; }

    /// <summary>The matrix shape, (out, in).</summary>
    public long[] Shape { get; }

    /// <summary>NF-b code indices into <see cref="CodeTables.NormalFloat"/>, uint8, one per weight (row-major).</summary>
    public Tensor Codes { get; }

    /// <summary>First-level scale codes in 0..2^b0−1, uint8, one per block of B0 weights.</summary>
    public Tensor ScaleCodes { get; }

    /// <summary>The minimum first-level absmax, subtracted before the scales were quantized (float32).</summary>
    public float Offset { get; }

    /// <summary>Second-level scales, one per group of B1 blocks, float32 values exactly representable in b1.</summary>
    public Tensor SecondLevel { get; }

    /// <summary>The float32 matrix these codes stand for, on the codes' device.</summary>
    public Tensor Dequantize()
    {
        using var scope = torch.NewDisposeScope();
        double levels = (1 << Config.ScaleBits) - 1;
        var step = SecondLevel.ClampMin(1e-38).Div(levels).unsqueeze(1);                                  // (groups, 1)
        var scales = ScaleCodes.to(ScalarType.Float32).view(-1, Config.BlockSize1).mul(step).AddInPlace(Offset); // (groups, B1)
        var table = torch.tensor(CodeTables.NormalFloat(Config.Bits).ToArray(), device: Codes.device);
        var values = table.index_select(0, Codes.view(-1).to(ScalarType.Int64)).view(-1, Config.BlockSize1, Config.BlockSize0);
        return values.mul_(scales.unsqueeze(2)).view(Shape).MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    public void Dispose()
    {
        Codes.Dispose();
        ScaleCodes.Dispose();
        SecondLevel.Dispose();
    }
}
