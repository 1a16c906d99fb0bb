using QuantPeft.Quant.Codecs;
using QuantPeft.Quant.Torch;
using QuantPeft.Trainers.Model;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Adapters;

// Loading a pre-quantized checkpoint: the bitsandbytes codes and block scales become the base's weight as they are
// stored (no dequantize-requantize round trip), so the base decodes to exactly what the file holds.
public sealed partial class QuantizedBaseLinear : IQuantizedLoadTarget
{
    /// <summary>
    /// Takes a stored 4-bit weight as this base's weight. Its block size may be any bitsandbytes allows; its format and
    /// double quantization must be the ones the base was built for (the folder's <c>quantization_config</c>).
    /// </summary>
    /// <exception cref="AdapterException">Not a 4-bit weight, or another shape, format or double quantization than the base's.</exception>
    public void LoadQuantized(string localName, QuantizedWeight weight)
    {
        if (localName != "weight" || weight is not FourBitWeight fourBit)
            throw new AdapterException($"a 4-bit base linear takes a bitsandbytes 4-bit 'weight', not '{localName}' stored as {weight.Describe()}");
        var value = fourBit.Value;
        if (value.Rows != OutFeatures || value.Columns != InFeatures)
            throw new AdapterException($"expected shape [{OutFeatures}, {InFeatures}], found [{value.Rows}, {value.Columns}]");
        if (value.QuantType != _format || value.IsNested != _doubleQuant)
            throw new AdapterException($"stored as {fourBit.Describe()}, but quantization_config declares {FormatName(_format)} with double quantization {(_doubleQuant ? "on" : "off")}");
        var taken = fourBit.Take();
        QuantizedTensor resident = taken;
        if (taken.Device.type != _device.type || taken.Device.index != _device.index)
        {
            resident = taken.to(_device);
            taken.Dispose();
        }
        _weight?.Dispose();
        _weight = resident;
    }

    private static string FormatName(FourBitType format) => format == FourBitType.Nf4 ? "nf4" : "fp4";
}
