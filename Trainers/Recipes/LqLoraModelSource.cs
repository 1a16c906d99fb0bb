using QuantPeft.Quant;
using QuantPeft.Quant.Checkpoints;
using QuantPeft.Trainers.Model;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Recipes;

/// <summary>
/// An LQ-LoRA checkpoint (<c>qpeft quantize --method lq-lora</c>, docs/formats.md) as a tensor source: each quantized
/// <c>P.weight</c> comes back from <see cref="GetQuantized"/> as its Q (codes, scale codes, offset, second-level scales)
/// with the factors <c>P.lq_lora.L1</c>, <c>P.lq_lora.L2</c>; those pieces are not listed as names of their own.
/// </summary>
internal sealed class LqLoraModelSource : IQuantizedTensorSource, IDisposable
{
    private static readonly string[] PieceSuffixes =
        [".weight.absmax", ".weight.absmax_offset", ".weight.nested_absmax", ".weight.quant_map", "." + LqLoraSerializer.StateSuffix,
         "." + LqLoraSerializer.L1Suffix, "." + LqLoraSerializer.L2Suffix];

    private readonly LqLoraCheckpoint _checkpoint;
    private readonly HashSet<string> _quantized;
    private readonly List<string> _names;

    /// <summary>Opens the checkpoint of <paramref name="folder"/>.</summary>
    /// <exception cref="ModelException">The folder is not a consistent LQ-LoRA checkpoint.</exception>
    public LqLoraModelSource(string folder)
    {
        try
        {
            _checkpoint = LqLoraCheckpoint.Open(folder);
        }
        catch (QuantInputException e)
        {
            throw new ModelException(e.Message);
        }
        var tensors = _checkpoint.Tensors;
        Origin = tensors.IndexPath ?? tensors.Shards[0].Path;
        _quantized = _checkpoint.Projections.ToHashSet(StringComparer.Ordinal);
        var pieces = _quantized.SelectMany(w => PieceSuffixes.Select(s => w[..^".weight".Length] + s)).ToHashSet(StringComparer.Ordinal);
        _names = tensors.Tensors.Select(t => t.Name).Where(n => !pieces.Contains(n)).ToList();
    }

    /// <inheritdoc />
    public string Origin { get; }

    /// <inheritdoc />
    public IEnumerable<string> Names => _names;

    /// <inheritdoc />
    public bool IsQuantized(string name) => _quantized.Contains(name);

    /// <inheritdoc />
    public QuantizedWeight GetQuantized(string name)
    {
        string file = _checkpoint.Tensors.FileOf(name).Path;
        try
        {
            var p = _checkpoint.Read(name);
            return new LqLoraWeight(name, file, p.Quantized, p.L1, p.L2);
        }
        catch (QuantInputException e)
        {
            throw new ModelException($"{file}: tensor '{name}': {e.Message}");
        }
    }

    /// <summary>A tensor as a dense CPU tensor: a quantized weight as the float32 <c>Q + L1·L2</c> it stands for.</summary>
    public Tensor Get(string name)
    {
        if (!_quantized.Contains(name)) return SafetensorsModelSource.Read(_checkpoint.Tensors, name);
        try
        {
            using var p = _checkpoint.Read(name);
            return p.Reconstruct();
        }
        catch (QuantInputException e)
        {
            throw new ModelException($"{_checkpoint.Tensors.FileOf(name).Path}: tensor '{name}': {e.Message}");
        }
    }

    /// <summary>Closes the file(s).</summary>
    public void Dispose() => _checkpoint.Dispose();
}
