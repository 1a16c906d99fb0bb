using System.Runtime.InteropServices;
using QuantPeft.Quant.Codecs;
using TorchSharp;
using static TorchSharp.torch;
using DeviceQuantizer = QuantPeft.Quant.Torch.FourBitQuantizer;
using HostQuantizer = QuantPeft.Quant.Codecs.FourBitBufferQuantizer;
using PackedFourBitTensor = QuantPeft.Quant.Codecs.PackedFourBitTensor;

namespace QuantPeft.Quant.Tests.Torch;

/// <summary>
/// The device (TorchSharp) quantizer and the host codec were written independently; a checkpoint written by
/// one and read by the other is only right if both produce the same bytes for the same weight.
/// </summary>
[Collection("Torch")]
public class HostDeviceParityTests
{
    [Theory]
    [InlineData(FourBitType.Nf4, FourBitType.Nf4, 64)]
    [InlineData(FourBitType.Fp4, FourBitType.Fp4, 64)]
    [InlineData(FourBitType.Nf4, FourBitType.Nf4, 256)]
    public void SameWeightGivesTheSameCodesAndScales(FourBitType deviceFormat, FourBitType hostType, int blockSize)
    {
        using var gen = new Generator(11);
        using var w = randn([96, 320], generator: gen).to(ScalarType.BFloat16);
        ushort[] bits = MemoryMarshal.Cast<byte, ushort>(w.bytes).ToArray();

        PackedFourBitTensor host = HostQuantizer.Quantize(bits, [96, 320], hostType, blockSize, doubleQuant: false);
        using var device = DeviceQuantizer.Quantize(w, deviceFormat, blockSize, doubleQuant: false);

        Assert.Equal(host.Packed, device.Packed.contiguous().bytes.ToArray());
        Assert.Equal(host.State.GetAbsMax(), device.AbsMax.to(ScalarType.Float32).contiguous().data<float>().ToArray());
    }
}
