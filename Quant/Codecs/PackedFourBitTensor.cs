namespace QuantPeft.Quant.Codecs;

/// <summary>
/// A 4-bit tensor on the host as flat arrays: packed codes (<c>weight</c>, uint8 [(n+1)/2, 1]) and the state that decodes them.
/// The torch-side form, whose codes and scales are tensors on a device, is <c>QuantPeft.Quant.Torch.QuantizedTensor</c>.
/// </summary>
public sealed class PackedFourBitTensor
{
    /// <summary>Pairs packed codes with their state; both are owned from now on.</summary>
    /// <exception cref="QuantInputException">The packed length does not match the state's element count.</exception>
    public PackedFourBitTensor(byte[] packed, QuantState state)
    {
        if (packed.Length != (state.ElementCount + 1L) / 2)
            throw new QuantInputException($"weight: expected {(state.ElementCount + 1L) / 2} packed bytes for {state.ElementCount} elements, found {packed.Length}");
        Packed = packed;
        State = state;
    }

    /// <summary>Packed 4-bit codes, element 2j in the high nibble.</summary>
    public byte[] Packed { get; }

    /// <summary>The quantization state.</summary>
    public QuantState State { get; }

    /// <summary>Stored bytes: packed codes plus statistics (see <see cref="QuantState.StatisticsBytes"/>).</summary>
    public long StoredBytes => Packed.Length + State.StatisticsBytes;
}
