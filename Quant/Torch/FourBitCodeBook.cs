using QuantPeft.Quant.Codecs;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantPeft.Quant.Torch;

/// <summary>
/// The decision thresholds and lookup tables of the 4-bit encoders, as small device tensors.
/// Encoding by thresholds (rather than argmin over |x − code|) is what bitsandbytes' CUDA kernels do;
/// it needs one comparison pass instead of sixteen distance passes.
/// </summary>
internal static class FourBitCodeBook
{
    // bitsandbytes' dQuantizeNF4 decision tree, flattened in ascending order. These are the float32
    // midpoints of adjacent NF4 codes; a value equal to a threshold goes to the lower code (strict '>').
    // Magnitude level (0 = smallest of 0, 1/192, 1/6, 1/4, 1/3, 1/2, 2/3, 1) → the low three FP4 bits.
    internal static readonly byte[] Fp4LevelToCode = [0b000, 0b001, 0b110, 0b111, 0b100, 0b101, 0b010, 0b011];

    /// <summary>The code table of <paramref name="format"/>, index = 4-bit code.</summary>
    internal static ReadOnlySpan<float> Table(FourBitType format) =>
        format == FourBitType.Nf4 ? CodeTables.Nf4 : CodeTables.Fp4;

    /// <summary>The code that stands for 0.0: the pad of an odd-length tensor.</summary>
    internal static byte ZeroCode(FourBitType format) => format == FourBitType.Nf4 ? (byte)7 : (byte)0;

    /// <summary>
    /// Encodes scaled values (float32, already in [−1, 1]) to codes 0..15 as uint8, on their device.
    /// </summary>
    internal static Tensor Encode(Tensor scaled, FourBitType format)
    {
        using var scope = torch.NewDisposeScope();
        Tensor codes;
        if (format == FourBitType.Nf4)
        {
            var thresholds = torch.tensor(CodeTables.Nf4Thresholds.ToArray(), device: scaled.device);
            // right: false → index = number of thresholds strictly below x, so ties go to the lower code.
            codes = torch.bucketize(scaled, thresholds, outInt32: true, right: false).to(ScalarType.Byte);
        }
        else
        {
            var thresholds = torch.tensor(CodeTables.Fp4MagnitudeThresholds.ToArray(), device: scaled.device);
            var levels = torch.bucketize(scaled.abs(), thresholds, outInt32: true, right: false);
            var levelToCode = torch.tensor(Fp4LevelToCode, device: scaled.device);
            var magnitude = levelToCode.index_select(0, levels.view(-1)).view_as(levels);
            // The sign bit follows x < 0, so −0.0 encodes as +0 (code 0), as in the CUDA kernel.
            var sign = scaled.Lt(0).to(ScalarType.Byte).MulInPlace(8L);
            codes = magnitude.bitwise_or_(sign);
        }
        return codes.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// A [256, 2] float32 table: row b holds the values of byte b's high nibble and low nibble, so that a
    /// packed byte dequantizes with one gather and no bit twiddling.
    /// </summary>
    internal static Tensor PairTable(FourBitType format, Device device)
    {
        var table = Table(format);
        var pairs = new float[512];
        for (int b = 0; b < 256; b++)
        {
            pairs[2 * b] = table[b >> 4];
            pairs[2 * b + 1] = table[b & 0xF];
        }
        return torch.tensor(pairs, device: device).view(256, 2);
    }
}
