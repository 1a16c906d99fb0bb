using QuantPeft.Formats.Safetensors;
using QuantPeft.Trainers.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Recipes;

/// <summary>
/// A safetensors checkpoint — one file, or the shards a <c>model.safetensors.index.json</c> lists — as an
/// <see cref="ITensorSource"/>: each tensor is read on request into a CPU tensor and handed to the loader, which
/// converts and disposes it, so one tensor's bytes are the most this source holds.
/// </summary>
public sealed class SafetensorsModelSource : ITensorSource, IDisposable
{
    private readonly SafetensorsCheckpoint _checkpoint;

    /// <summary>Opens <paramref name="path"/>: a <c>.safetensors</c> file, a shard index, or a folder holding either.</summary>
    /// <exception cref="SafetensorsFormatException">A file is malformed, or a shard is missing or disagrees with the index.</exception>
    public SafetensorsModelSource(string path)
    {
        _checkpoint = SafetensorsCheckpoint.Open(path);
        Origin = _checkpoint.IndexPath ?? _checkpoint.Shards[0].Path;
    }

    /// <inheritdoc />
    public string Origin { get; }

    /// <inheritdoc />
    public IEnumerable<string> Names => _checkpoint.Tensors.Select(t => t.Name);

    /// <inheritdoc />
    public Tensor Get(string name) => Read(_checkpoint, name);

    /// <summary>Reads tensor <paramref name="name"/> of <paramref name="checkpoint"/> into a new CPU tensor of its stored dtype.</summary>
    /// <exception cref="ModelException">The dtype is not one the trainer loads.</exception>
    internal static Tensor Read(SafetensorsCheckpoint checkpoint, string name)
    {
        var info = checkpoint.GetTensor(name);
        var dtype = info.DType switch
        {
            SafetensorsDType.BF16 => ScalarType.BFloat16,
            SafetensorsDType.F16 => ScalarType.Float16,
            SafetensorsDType.F32 => ScalarType.Float32,
            SafetensorsDType.F64 => ScalarType.Float64,
            SafetensorsDType.I64 => ScalarType.Int64,
            SafetensorsDType.I32 => ScalarType.Int32,
            SafetensorsDType.U8 => ScalarType.Byte,
            _ => throw new ModelException($"{checkpoint.FileOf(name).Path}: tensor '{name}' has dtype {info.DType}; the trainer loads BF16, F16, F32, F64, I64, I32 or U8"),
        };
        var tensor = empty(info.Shape, dtype);
        if (tensor.numel() > 0) checkpoint.CopyTo(name, tensor.bytes);
        return tensor;
    }

    /// <summary>The safetensors dtype for a torch dtype the trainer writes.</summary>
    internal static SafetensorsDType ToSafetensors(ScalarType dtype) => dtype switch
    {
        ScalarType.BFloat16 => SafetensorsDType.BF16,
        ScalarType.Float16 => SafetensorsDType.F16,
        ScalarType.Float32 => SafetensorsDType.F32,
        ScalarType.Float64 => SafetensorsDType.F64,
        _ => throw new ArgumentException($"dtype {dtype} is not written by the trainer", nameof(dtype)),
    };

    /// <summary>An entry for the safetensors writer holding a copy of <paramref name="tensor"/>'s bytes.</summary>
    internal static SafetensorsTensorEntry Entry(string name, Tensor tensor)
    {
        using var cpu = tensor.detach().cpu().contiguous();
        return SafetensorsTensorEntry.FromBytes(name, ToSafetensors(cpu.dtype), cpu.shape, cpu.bytes.ToArray());
    }

    /// <summary>Closes the file(s).</summary>
    public void Dispose() => _checkpoint.Dispose();
}
