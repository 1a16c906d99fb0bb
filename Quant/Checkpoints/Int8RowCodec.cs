using QuantPeft.Quant.Codecs;

namespace QuantPeft.Quant.Checkpoints;

/// <summary>
/// LLM.int8 row-wise ("vector-wise") absmax quantization as bitsandbytes stores it for <c>Linear8bitLt</c>:
/// <c>SCB[i] = max_j |W[i,j]|</c> (f32) and <c>CB[i,j] = round(W[i,j] · 127 / SCB[i])</c> (int8, ties to even),
/// so <c>W ≈ CB · SCB / 127</c>.
/// </summary>
public static class Int8RowCodec
{
    /// <summary>Quantizes a row-major [rows, cols] matrix.</summary>
    /// <exception cref="QuantInputException">Sizes do not match, or a weight is not finite.</exception>
    public static (sbyte[] Codes, float[] RowScales) Quantize(ReadOnlySpan<float> weights, long rows, long cols)
    {
        if (rows * cols != weights.Length)
            throw new QuantInputException($"int8 row quantization: {weights.Length} values do not form a {rows}×{cols} matrix");
        var codes = new sbyte[weights.Length];
        var scales = new float[rows];
        for (long r = 0; r < rows; r++)
        {
            ReadOnlySpan<float> row = weights.Slice((int)(r * cols), (int)cols);
            float absmax = 0;
            foreach (float v in row)
            {
                if (!float.IsFinite(v)) throw new QuantInputException($"int8 row quantization: row {r} holds a non-finite value");
                absmax = Math.Max(absmax, Math.Abs(v));
            }
            scales[r] = absmax;
            float factor = absmax == 0 ? 0f : 127f / absmax;
            Span<sbyte> dst = codes.AsSpan((int)(r * cols), (int)cols);
            for (int c = 0; c < row.Length; c++)
                dst[c] = (sbyte)Math.Clamp(MathF.Round(row[c] * factor, MidpointRounding.ToEven), -127f, 127f);
        }
        return (codes, scales);
    }

    /// <summary>Reconstructs <c>CB · SCB / 127</c>.</summary>
    public static void Dequantize(ReadOnlySpan<sbyte> codes, ReadOnlySpan<float> rowScales, Span<float> output)
    {
        long cols = codes.Length / rowScales.Length;
        for (int r = 0; r < rowScales.Length; r++)
        {
            float s = rowScales[r] / 127f;
            for (int c = 0; c < cols; c++)
                output[(int)(r * cols + c)] = codes[(int)(r * cols + c)] * s;
        }
    }
}
