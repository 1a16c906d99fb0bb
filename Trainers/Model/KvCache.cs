using static TorchSharp.torch;

namespace QuantPeft.Trainers.Model;

/// <summary>
/// The keys and values of every block for the tokens a model has already seen, so that generation runs each new token
/// through the model once instead of re-running the whole prefix. It owns its tensors.
/// </summary>
/// <remarks>
/// Keys are stored after the rotary embedding, per key/value head (B, nKv, T, D), as grouped-query attention needs
/// them; <see cref="CausalLm.Forward(Tensor, KvCache)"/> places the new tokens at positions
/// <see cref="Length"/> … <see cref="Length"/> + T − 1.
/// </remarks>
public sealed class KvCache : IDisposable
{
    private readonly Slot[] _slots;

    /// <summary>An empty cache for a model of <paramref name="layers"/> blocks.</summary>
    public KvCache(int layers) => _slots = Enumerable.Range(0, layers).Select(_ => new Slot()).ToArray();

    /// <summary>Tokens cached so far (the position of the next token).</summary>
    public long Length { get; private set; }

    /// <summary>The slot of block <paramref name="layer"/>.</summary>
    internal Slot this[int layer] => _slots[layer];

    internal void Advance(long tokens) => Length += tokens;

    /// <summary>Forgets every token (a new conversation).</summary>
    public void Clear()
    {
        foreach (var s in _slots) s.Dispose();
        Length = 0;
    }

    /// <inheritdoc/>
    public void Dispose() => Clear();

    /// <summary>One block's keys and values.</summary>
    internal sealed class Slot : IDisposable
    {
        private Tensor? _keys, _values;

        /// <summary>Appends k/v (B, nKv, T, D) and returns all cached keys and values, which the slot keeps owning.</summary>
        public (Tensor Keys, Tensor Values) Append(Tensor k, Tensor v)
        {
            var keys = _keys is null ? k.detach().clone() : cat([_keys, k.detach()], 2);
            var values = _values is null ? v.detach().clone() : cat([_values, v.detach()], 2);
            Dispose();
            _keys = keys.DetachFromDisposeScope();
            _values = values.DetachFromDisposeScope();
            return (_keys, _values);
        }

        public void Dispose()
        {
            _keys?.Dispose();
            _values?.Dispose();
            _keys = _values = null;
        }
    }
}
