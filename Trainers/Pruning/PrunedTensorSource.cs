using System.Text.RegularExpressions;
using QuantPeft.Formats.HuggingFace;
using QuantPeft.Trainers.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Pruning;

/// <summary>
/// A checkpoint seen through a <see cref="LoramPruner"/>: each tensor of a pruned block is read at its full shape
/// (checked against the spec), cut to the kept rows or columns, and the full copy dropped before the loader sees the
/// cut one, so at most one unpruned tensor is alive at a time; a source that can produce the kept slices alone
/// (<see cref="ISelectingTensorSource"/>, e.g. a synthetic model) is asked for them instead. Names and order are the checkpoint's.
/// </summary>
internal sealed partial class PrunedTensorSource : ITensorSource
{
    private readonly LoramPruner _pruner;
    private readonly ModelSpec _spec;
    private readonly ITensorSource _inner;

    public PrunedTensorSource(LoramPruner pruner, ModelSpec spec, ITensorSource inner)
    {
        _pruner = pruner;
        _spec = spec;
        _inner = inner;
    }

    public string Origin => _inner.Origin;

    public IEnumerable<string> Names => _inner.Names;

    public Tensor Get(string name)
    {
        var match = BlockTensor().Match(name);
        if (!match.Success) return _inner.Get(name);
        int layer = int.Parse(match.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        if (layer >= _spec.NumLayers || !LoramPruner.IsPrunedLayer(layer, _spec.NumLayers)) return _inner.Get(name);
        long d = _spec.HeadDim, group = _spec.GroupSize;
        (int Dim, long[] Keep)? cut = (match.Groups[2].Value, match.Groups[3].Value) switch
        {
            ("q_proj", _) => (0, PruningPlan.HeadRows(_pruner.KeptKvHeads(layer, _inner), group * d)),
            ("k_proj" or "v_proj", _) => (0, PruningPlan.HeadRows(_pruner.KeptKvHeads(layer, _inner), d)),
            ("o_proj", "weight") => (1, PruningPlan.HeadRows(_pruner.KeptKvHeads(layer, _inner), group * d)),
            ("gate_proj" or "up_proj", _) => (0, Channels(_pruner.KeptChannels(layer, _inner))),
            ("down_proj", _) => (1, Channels(_pruner.KeptChannels(layer, _inner))),
            ("qkv_proj", _) => (0, PruningPlan.FusedQkvRows(PruningPlan.HeadRows(_pruner.KeptKvHeads(layer, _inner), group * d),
                PruningPlan.HeadRows(_pruner.KeptKvHeads(layer, _inner), d), _spec.NumHeads * d, _spec.NumKvHeads * d)),
            ("gate_up_proj", _) => (0, PruningPlan.FusedGateUpRows(Channels(_pruner.KeptChannels(layer, _inner)), _spec.IntermediateSize)),
            _ => null,   // o_proj.bias lives in the hidden dimension, which is never pruned
        };
        if (cut is not { } c) return _inner.Get(name);
        if (_inner is ISelectingTensorSource selecting && selecting.TrySelect(name, c.Dim, c.Keep, out var selected)) return selected!;
        using var full = ChannelImportance.FetchFull(_spec, _inner, name);
        using var index = tensor(c.Keep, device: full.device);
        return full.index_select(c.Dim, index);
    }

    private static long[] Channels(int[] channels) => channels.Select(c => (long)c).ToArray();

    [GeneratedRegex(@"^model\.layers\.(\d+)\.(?:self_attn|mlp)\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj|qkv_proj|gate_up_proj)\.(weight|bias)$")]
    private static partial Regex BlockTensor();
}
