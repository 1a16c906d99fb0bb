using TorchSharp;
using static TorchSharp.torch;

namespace QuantPeft.Quant.Torch;

/// <summary>
/// bitsandbytes' blockwise 8-bit quantizer with the signed dynamic map, as used by double quantization
/// to compress the 4-bit absmax values (as bitsandbytes does for QLoRA).
/// </summary>
internal static class DynamicBlockwise8Bit
{
    /// <summary>
    /// Quantizes a float32 vector in blocks of <paramref name="blockSize"/>: per-block float32 absmax
    /// (clamped to ≥ 1e-38 only for the reciprocal, so an all-zero block encodes as code 127 = 0.0), then the
    /// nearest entry of the signed dynamic map, ties to the lower index.
    /// </summary>
    /// <returns>The uint8 codes [n] and the float32 block absmax [ceil(n / blockSize)].</returns>
    internal static (Tensor Codes, Tensor AbsMax) Quantize(Tensor values, int blockSize)
    {
        using var scope = torch.NewDisposeScope();
        long n = values.numel();
        long blocks = (n + blockSize - 1) / blockSize;
        var padded = blocks * blockSize == n
            ? values.view(blocks, blockSize)
            : torch.nn.functional.pad(values, [0, blocks * blockSize - n]).view(blocks, blockSize);
        var absmax = padded.abs().amax(1);
        var reciprocal = absmax.ClampMin(1e-38).reciprocal();
        var scaled = padded.mul(reciprocal.unsqueeze(1)).ClampInPlace(-1, 1).view(-1).narrow(0, 0, n);
        var midpoints = torch.tensor(Midpoints(), device: values.device);
        var codes = torch.bucketize(scaled, midpoints, outInt32: true, right: false).to(ScalarType.Byte);
        return (codes.MoveToOuterDisposeScope(), absmax.MoveToOuterDisposeScope());
    }

    /// <summary>Dequantizes: <c>map[code] · absmax[i / blockSize]</c> in float32.</summary>
    internal static Tensor Dequantize(Tensor codes, Tensor absmax, int blockSize)
    {
        using var scope = torch.NewDisposeScope();
        long n = codes.numel();
        long blocks = absmax.numel();
        var map = torch.tensor(CodeTables.DynamicSigned.ToArray(), device: codes.device);
        var values = map.index_select(0, codes.view(-1).to(ScalarType.Int32));
        if (blocks * blockSize != n)
            values = torch.nn.functional.pad(values, [0, blocks * blockSize - n]);
        var result = values.view(blocks, blockSize).mul_(absmax.unsqueeze(1)).view(-1).narrow(0, 0, n);
        return result.contiguous().MoveToOuterDisposeScope();
    }

    // Decision points between adjacent map entries, computed as the CUDA kernel does: (a + b) * 0.5f.
    private static float[] Midpoints()
    {
        var map = CodeTables.DynamicSigned;
        var result = new float[map.Length - 1];
        for (int i = 0; i < result.Length; i++)
            result[i] = (map[i] + map[i + 1]) * 0.5f;
        return result;
    }
}
