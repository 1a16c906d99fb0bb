using QuantPeft.Quant.Torch;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantPeft.Quant.LqLora;

/// <summary>
/// Quantize-then-dequantize of a float32 matrix under an <see cref="LqQuantConfig"/> (LQ-LoRA's
/// "blockwise-nf" method), on the matrix's device.
/// </summary>
/// <remarks>
/// <list type="number">
/// <item>s1 = absmax of each block of B0 weights (flattened row-major), grouped B1 per group.</item>
/// <item>offset = min(s1) (keeps every reconstructed scale ≥ offset ≥ 0); s2 = s1 − offset.</item>
/// <item>s3 = max(s2) per group, rounded to the b1 dtype.</item>
/// <item>s2 is fake-quantized to b0-bit unsigned integers: <c>round(s2 · (2^b0 − 1)/s3)</c> clamped to
/// [0, 2^b0 − 1], then divided back; s1' = s2' + offset.</item>
/// <item>Each weight is divided by its s1', rounded to the nearest NF-b value (ties to the lower), and
/// multiplied back by s1'.</item>
/// </list>
/// </remarks>
public static class LqQuantizer
{
    /// <summary>Returns the dequantized float32 matrix Q ≈ <paramref name="matrix"/>.</summary>
    /// <exception cref="QuantInputException">The matrix is not float32 or its size is not a multiple of B0·B1.</exception>
    public static Tensor FakeQuantize(Tensor matrix, LqQuantConfig config, string name = "matrix")
    {
        using var q = Quantize(matrix, config, name);
        return q.Dequantize();
    }

    /// <summary>Quantizes a float32 matrix into its stored form (codes, scale codes, offset, second-level scales).</summary>
    /// <exception cref="QuantInputException">The matrix is not float32 or its size is not a multiple of B0·B1.</exception>
    public static LqCodes Quantize(Tensor matrix, LqQuantConfig config, string name = "matrix")
    {
        long group = (long)config.BlockSize0 * config.BlockSize1;
        if (matrix.dtype != ScalarType.Float32)
            throw new QuantInputException($"'{name}': LQ-LoRA quantization works in float32, got {matrix.dtype}.");
        if (matrix.numel() % group != 0)
            throw new QuantInputException(
                $"'{name}': {matrix.numel()} elements are not a multiple of B0·B1 = {group} required by {config}.");

        using var scope = torch.NewDisposeScope();
        var blocks = matrix.reshape(-1, config.BlockSize1, config.BlockSize0); // (groups, B1, B0)
        var s1 = blocks.abs().amax(2);                                         // (groups, B1)
        float offset = s1.min().item<float>();
        var s2 = s1.Sub(offset);
        var s3 = s2.amax([1]).to(SecondLevelType(config.SecondLevel)).to(ScalarType.Float32); // (groups)
        double levels = (1 << config.ScaleBits) - 1;
        var step = s3.ClampMin(1e-38).Div(levels).unsqueeze(1);               // (groups, 1)
        var scaleCodes = s2.div(step).round_().ClampInPlace(0, levels);
        // The same float32 operations as LqCodes.Dequantize, so codes are chosen against the stored scales.
        var scales = scaleCodes.mul(step).AddInPlace(offset).unsqueeze(2);           // (groups, B1, 1)

        var table = CodeTables.NormalFloat(config.Bits).ToArray();
        var midpoints = torch.tensor(Midpoints(table), device: matrix.device);
        var scaled = blocks / scales.ClampMin(1e-38);
        var codes = torch.bucketize(scaled, midpoints, outInt32: false, right: false).to(ScalarType.Byte);
        return new LqCodes(config, matrix.shape, codes.view(-1), scaleCodes.to(ScalarType.Byte).view(-1), offset, s3, name);
    }

    private static ScalarType SecondLevelType(SecondLevelStorage storage) => storage switch
    {
        SecondLevelStorage.BFloat16 => ScalarType.BFloat16,
        SecondLevelStorage.Float16 => ScalarType.Float16,
        _ => ScalarType.Float32,
    };

    private static float[] Midpoints(float[] table)
    {
        var result = new float[table.Length - 1];
        for (int i = 0; i < result.Length; i++) result[i] = (table[i] + table[i + 1]) / 2f;
        return result;
    }
}
