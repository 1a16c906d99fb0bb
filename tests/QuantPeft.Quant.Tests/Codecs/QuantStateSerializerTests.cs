using System.Text;
using QuantPeft.Quant.Codecs;

namespace QuantPeft.Quant.Tests.Codecs;

public class QuantStateSerializerTests
{
    private static PackedFourBitTensor Sample(bool nested, FourBitType type = FourBitType.Nf4)
    {
        var rng = new Random(1);
        var x = new float[3 * 333];
        for (int i = 0; i < x.Length; i++) x[i] = (float)(rng.NextDouble() - 0.5);
        return FourBitBufferQuantizer.Quantize(x, [3, 333], type, 64, nested);
    }

    [Fact]
    public void Nested_state_writes_bitsandbytes_keys_shapes_and_json()
    {
        var q = Sample(nested: true);
        var tensors = QuantStateSerializer.ToTensors(q.Packed, q.State);
        Assert.Equal(["weight", "weight.absmax", "weight.quant_map", "weight.nested_absmax", "weight.nested_quant_map", "weight.quant_state.bitsandbytes__nf4"],
            tensors.Select(t => t.NameSuffix));
        Assert.Equal(new long[] { 500, 1 }, tensors[0].Shape);
        Assert.Equal(("U8", 16L), (tensors[1].DType, tensors[1].Shape[0]));
        Assert.Equal(("F32", 1L), (tensors[3].DType, tensors[3].Shape[0]));
        string json = Encoding.UTF8.GetString(tensors[5].Data);
        string offset = ((double)q.State.Nested!.Offset).ToString("R", System.Globalization.CultureInfo.InvariantCulture).Replace('E', 'e');
        Assert.Equal("{\"quant_type\": \"nf4\", \"blocksize\": 64, \"dtype\": \"float32\", \"shape\": [3, 333], \"nested_blocksize\": 256, \"nested_dtype\": \"float32\", \"nested_offset\": " + offset + "}", json);
    }

    [Theory]
    [InlineData(true, FourBitType.Nf4)]
    [InlineData(false, FourBitType.Nf4)]
    [InlineData(true, FourBitType.Fp4)]
    public void Round_trip_is_lossless(bool nested, FourBitType type)
    {
        var q = Sample(nested, type);
        var tensors = QuantStateSerializer.ToTensors(q.Packed, q.State)
            .Select(t => new SerializedTensor("model.layers.0.mlp.up_proj." + t.NameSuffix, t.DType, t.Shape, t.Data));
        var (packed, state) = QuantStateSerializer.FromTensors(tensors);
        Assert.Equal(q.Packed, packed);
        Assert.Equal(q.State.Shape, state.Shape);
        Assert.Equal((q.State.QuantType, q.State.BlockSize, q.State.DType, q.State.IsNested), (state.QuantType, state.BlockSize, state.DType, state.IsNested));
        Assert.Equal(q.State.GetAbsMax(), state.GetAbsMax());
        if (nested) Assert.Equal(q.State.Nested!.Offset, state.Nested!.Offset);
        var a = new float[999];
        var b = new float[999];
        FourBitBufferQuantizer.Dequantize(q, a);
        FourBitBufferQuantizer.Dequantize(new PackedFourBitTensor(packed, state), b);
        Assert.Equal(a, b);
    }

    [Fact]
    public void Missing_or_wrong_tensors_are_named()
    {
        var q = Sample(nested: true);
        var tensors = QuantStateSerializer.ToTensors(q.Packed, q.State).ToList();
        var e = Assert.Throws<QuantInputException>(() => QuantStateSerializer.FromTensors(tensors.Where(t => t.NameSuffix != "weight.nested_absmax")));
        Assert.StartsWith("weight.nested_absmax:", e.Message);
        var badJson = tensors.Select(t => t.NameSuffix.StartsWith("weight.quant_state", StringComparison.Ordinal)
            ? new SerializedTensor(t.NameSuffix, "U8", [5], Encoding.UTF8.GetBytes("{\"x\":")) : t);
        e = Assert.Throws<QuantInputException>(() => QuantStateSerializer.FromTensors(badJson));
        Assert.StartsWith("weight.quant_state.bitsandbytes__nf4:", e.Message);
    }
}
