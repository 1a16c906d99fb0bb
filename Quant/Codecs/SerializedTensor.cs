namespace QuantPeft.Quant.Codecs;

/// <summary>
/// One tensor of a checkpoint in a form any writer can store: the key suffix after the module prefix
/// (e.g. <c>weight.absmax</c>), the safetensors dtype name (<c>U8</c>, <c>F32</c>), the shape, and the raw
/// little-endian bytes. Keeps this project free of TorchSharp and of any file format.
/// </summary>
public sealed class SerializedTensor
{
    /// <summary>Creates the tensor description; <paramref name="data"/> is owned from now on.</summary>
    public SerializedTensor(string nameSuffix, string dtype, IReadOnlyList<long> shape, byte[] data)
    {
        NameSuffix = nameSuffix;
        DType = dtype;
        Shape = [.. shape];
        Data = data;
    }

    /// <summary>Key after the module prefix, e.g. <c>weight.quant_state.bitsandbytes__nf4</c>.</summary>
    public string NameSuffix { get; }

    /// <summary>safetensors dtype name: <c>U8</c> or <c>F32</c>.</summary>
    public string DType { get; }

    /// <summary>Tensor shape.</summary>
    public IReadOnlyList<long> Shape { get; }

    /// <summary>Raw little-endian element bytes.</summary>
    public byte[] Data { get; }
}
