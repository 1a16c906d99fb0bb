using QuantPeft.Formats.Safetensors;
using QuantPeft.Quant;
using QuantPeft.Quant.Checkpoints;
using QuantPeft.Quant.Torch;
using QuantPeft.Trainers.Model;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Recipes;

/// <summary>
/// A bitsandbytes 4-bit checkpoint in Hugging Face layout as a tensor source: each quantized <c>P.weight</c> (uint8
/// packed codes) is one name whose stored form — codes, <c>absmax</c>, <c>quant_map</c>, the nested statistics and the
/// <c>quant_state.bitsandbytes__nf4|fp4</c> JSON — comes back whole from <see cref="GetQuantized"/>; the statistics
/// tensors are not listed as names of their own. Unquantized tensors (embeddings, norms, the LM head) read as usual.
/// </summary>
internal sealed class BnbModelSource : IQuantizedTensorSource, IDisposable
{
    // What bitsandbytes stores beside P.weight for a Linear4bit (QuantState.as_dict(packed=True)).
    private static readonly string[] StatisticsSuffixes = [".absmax", ".quant_map", ".nested_absmax", ".nested_quant_map"];
    private const string StatePrefix = ".quant_state.bitsandbytes__";

    private readonly QuantizedCheckpoint _checkpoint;
    private readonly HashSet<string> _quantized;
    private readonly List<string> _names;

    /// <summary>Opens the checkpoint of <paramref name="folder"/>.</summary>
    /// <exception cref="ModelException">The folder is not a bitsandbytes 4-bit checkpoint, or holds packed codes without their quant state.</exception>
    public BnbModelSource(string folder)
    {
        try
        {
            _checkpoint = QuantizedCheckpoint.Open(folder);
        }
        catch (QuantInputException e)
        {
            throw new ModelException(e.Message);
        }
        var tensors = _checkpoint.Tensors;
        Origin = tensors.IndexPath ?? tensors.Shards[0].Path;
        _quantized = _checkpoint.QuantizedWeights.ToHashSet(StringComparer.Ordinal);
        _names = tensors.Tensors.Select(t => t.Name).Where(n => !IsStatistics(n)).ToList();
        foreach (var t in tensors.Tensors)
            if (t.DType == SafetensorsDType.U8 && t.Name.EndsWith(".weight", StringComparison.Ordinal) && !_quantized.Contains(t.Name))
            {
                _checkpoint.Dispose();
                throw new ModelException($"{tensors.FileOf(t.Name).Path}: tensor '{t.Name}' holds uint8 codes {t.ShapeText} but the checkpoint has no '{t.Name}{StatePrefix}nf4' (or fp4) quant state to decode them");
            }
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
            var host = _checkpoint.FourBit(name);
            return new FourBitWeight(name, file, QuantizedTensor.FromState(host.Packed, host.State, name: name));
        }
        catch (QuantInputException e)
        {
            throw new ModelException($"{file}: tensor '{name}': {e.Message}");
        }
    }

    /// <summary>A tensor as a dense CPU tensor: a quantized weight dequantized to the dtype it was quantized from.</summary>
    public Tensor Get(string name)
    {
        if (!_quantized.Contains(name)) return SafetensorsModelSource.Read(_checkpoint.Tensors, name);
        using var weight = (FourBitWeight)GetQuantized(name);
        return weight.Value.Dequantize();
    }

    /// <summary>Closes the file(s).</summary>
    public void Dispose() => _checkpoint.Dispose();

    private bool IsStatistics(string name)
    {
        int at = name.IndexOf(".weight.", StringComparison.Ordinal);
        if (at < 0 || !_quantized.Contains(name[..(at + ".weight".Length)])) return false;
        string rest = name[(at + ".weight".Length)..];
        return StatisticsSuffixes.Contains(rest) || rest.StartsWith(StatePrefix, StringComparison.Ordinal);
    }
}
