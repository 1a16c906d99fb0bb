using QuantPeft.Quant.Codecs;
using TorchSharp;
using static TorchSharp.torch;
using FourBitQuantizer = QuantPeft.Quant.Torch.FourBitQuantizer;
using FourBitType = QuantPeft.Quant.Codecs.FourBitType;
using QuantizedTensor = QuantPeft.Quant.Torch.QuantizedTensor;

namespace QuantPeft.Quant.Tests.Torch;

/// <summary>
/// On the CPU, <see cref="FourBitQuantizer.Quantize"/> takes the SIMD host path; the torch-operation path serves
/// every other device. A model quantized on the CPU and one quantized on a GPU must hold the same bytes.
/// </summary>
[Collection("Torch")]
public class HostQuantizerParityTests
{
    [Theory]
    [InlineData(FourBitType.Nf4, ScalarType.BFloat16, 64, true, 37, 129)]
    [InlineData(FourBitType.Nf4, ScalarType.BFloat16, 64, false, 300, 300)]
    [InlineData(FourBitType.Nf4, ScalarType.Float32, 128, true, 1, 4097)]
    [InlineData(FourBitType.Nf4, ScalarType.Float16, 64, true, 513, 65)]
    [InlineData(FourBitType.Fp4, ScalarType.BFloat16, 64, true, 257, 61)]
    [InlineData(FourBitType.Fp4, ScalarType.Float32, 32, false, 7, 9)]
    [InlineData(FourBitType.Nf4, ScalarType.BFloat16, 4096, true, 64, 4096)]
    public void HostAndTorchPathsGiveIdenticalCodesAndStatistics(
        FourBitType format, ScalarType dtype, int blockSize, bool doubleQuant, long rows, long cols)
    {
        using var gen = new Generator((ulong)(rows * 31 + cols));
        // Heavy-tailed values of mixed scale, so blocks span many absmax magnitudes and double quantization sees spread.
        using var w = (randn([rows, cols], generator: gen) * randn([rows, 1], generator: gen).exp()).to(dtype);
        AssertSame(w, format, blockSize, doubleQuant);
    }

    [Theory]
    [InlineData(FourBitType.Nf4)]
    [InlineData(FourBitType.Fp4)]
    public void ValuesOnThresholdsZeroBlocksAndTinyBlocksAgree(FourBitType format)
    {
        // Each block has absmax 1 (its first element), so x̂ = x: the rest are the decision thresholds themselves,
        // the table values, ±0.0, and the next floats either side of each threshold. Then an all-zero block and a
        // block whose largest magnitude is below the 1e-38 floor (subnormal in float32).
        var thresholds = format == FourBitType.Nf4 ? CodeTables.Nf4Thresholds.ToArray() : CodeTables.Fp4MagnitudeThresholds.ToArray();
        var table = format == FourBitType.Nf4 ? CodeTables.Nf4.ToArray() : CodeTables.Fp4.ToArray();
        var values = new List<float>();
        foreach (float t in thresholds)
            foreach (float v in new[] { t, MathF.BitDecrement(t), MathF.BitIncrement(t), -t, -MathF.BitIncrement(t) })
                values.AddRange([1f, v]);
        foreach (float v in table) values.AddRange([-1f, v]);
        values.AddRange([1f, -0f, -1f, 0f]);
        while (values.Count % 64 != 0) values.Add(0.25f);
        values.AddRange(new float[64]);
        values.AddRange(Enumerable.Range(0, 64).Select(i => (i % 3 - 1) * 3e-39f));
        using var w = tensor(values.ToArray()).view(-1, 64);
        AssertSame(w, format, 64, doubleQuant: true);
        AssertSame(w, format, 64, doubleQuant: false);
    }

    [Fact]
    public void TheHostPathRejectsANaNWeightNamingIt()
    {
        using var w = ones([4, 64]);
        w[2, 5] = tensor(float.NaN);
        var e = Assert.Throws<QuantInputException>(() => FourBitQuantizer.Quantize(w, name: "model.layers.0.mlp.up_proj.weight"));
        Assert.Contains("'model.layers.0.mlp.up_proj.weight'", e.Message);
        Assert.Contains("element 133", e.Message);
    }

    private static void AssertSame(Tensor w, FourBitType format, int blockSize, bool doubleQuant)
    {
        Assert.True(FourBitQuantizer.HostQuantizable(w));
        using QuantizedTensor host = FourBitQuantizer.Quantize(w, format, blockSize, doubleQuant);
        using QuantizedTensor ops = FourBitQuantizer.QuantizeWithTorchOps(w, format, blockSize, doubleQuant);
        Assert.Equal(ops.Packed.shape, host.Packed.shape);
        Assert.Equal(ops.Packed.bytes.ToArray(), host.Packed.bytes.ToArray());
        Assert.Equal(ops.AbsMax.dtype, host.AbsMax.dtype);
        Assert.Equal(ops.AbsMax.bytes.ToArray(), host.AbsMax.bytes.ToArray());
        Assert.Equal(ops.IsNested, host.IsNested);
        if (doubleQuant)
        {
            Assert.Equal(ops.NestedAbsMax!.bytes.ToArray(), host.NestedAbsMax!.bytes.ToArray());
            Assert.Equal(BitConverter.SingleToInt32Bits(ops.NestedOffset), BitConverter.SingleToInt32Bits(host.NestedOffset));
        }
        Assert.Equal(ops.Shape.ToArray(), host.Shape.ToArray());
        Assert.Equal(ops.DType, host.DType);
    }
}
