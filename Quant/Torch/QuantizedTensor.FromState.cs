using QuantPeft.Quant.Codecs;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantPeft.Quant.Torch;

public sealed partial class QuantizedTensor
{
    /// <summary>
    /// Builds the device form of a 4-bit weight read from a checkpoint (the packed codes and the
    /// <see cref="QuantState"/> that <see cref="QuantStateSerializer.FromTensors"/> returns), copying the bytes as they
    /// are: the codes and block scales are not re-derived, so the result decodes to exactly what the file holds.
    /// </summary>
    /// <param name="packed">The packed codes, <c>(n+1)/2</c> bytes, element 2j in the high nibble of byte j.</param>
    /// <param name="state">The weight's quantization state.</param>
    /// <param name="device">Where the tensors go; null means the CPU.</param>
    /// <param name="name">The weight's name for error messages.</param>
    /// <exception cref="QuantInputException">The weight is not 2-D, its code table is not bitsandbytes' NF4/FP4 table
    /// (the decoder has those two built in), the nested block size is not 256, or the code count is wrong.</exception>
    public static QuantizedTensor FromState(byte[] packed, QuantState state, Device? device = null, string name = "weight")
    {
        if (state.Shape.Count != 2)
            throw new QuantInputException($"'{name}': expected a 2-D weight [out, in], found shape [{string.Join(", ", state.Shape)}]");
        if (packed.Length != (state.ElementCount + 1L) / 2)
            throw new QuantInputException($"'{name}': expected {(state.ElementCount + 1L) / 2} packed bytes for shape [{string.Join(", ", state.Shape)}], found {packed.Length}");
        FourBitType format = state.QuantType;
        ReadOnlySpan<float> table = FourBitCodeBook.Table(format);
        for (int i = 0; i < 16; i++)
            if (state.Code[i] != table[i])
                throw new QuantInputException(
                    $"'{name}.quant_map': expected bitsandbytes' {TypeName(format)} table, found {state.Code[i]} at code {i} (expected {table[i]})");
        if (state.Nested is { } n && n.BlockSize != FourBitQuantizer.NestedBlockSize)
            throw new QuantInputException($"'{name}': nested_blocksize {n.BlockSize} is not supported; bitsandbytes double-quantizes in blocks of {FourBitQuantizer.NestedBlockSize}");

        var target = device ?? CPU;
        using var scope = torch.NewDisposeScope();
        var codes = Upload(torch.tensor(packed, new long[] { packed.Length, 1 }), target);
        Tensor absmax;
        Tensor? nested = null;
        if (state.Nested is { } dq)
        {
            absmax = Upload(torch.tensor(dq.Codes.ToArray(), new long[] { dq.Codes.Length }), target);
            nested = Upload(torch.tensor(dq.Scales.ToArray()), target);
        }
        else
        {
            absmax = Upload(torch.tensor(state.RawAbsMax.ToArray()), target);
        }
        var dtype = state.DType switch
        {
            ElementType.BFloat16 => ScalarType.BFloat16,
            ElementType.Float16 => ScalarType.Float16,
            _ => ScalarType.Float32,
        };
        return new QuantizedTensor(codes.MoveToOuterDisposeScope(), absmax.MoveToOuterDisposeScope(), nested?.MoveToOuterDisposeScope(),
            state.Nested?.Offset ?? 0f, format, state.BlockSize, [.. state.Shape], dtype);
    }

    private static string TypeName(FourBitType format) => format == FourBitType.Nf4 ? "NF4" : "FP4";

    private static Tensor Upload(Tensor host, Device device) => device.type == DeviceType.CPU ? host : host.to(device);
}
