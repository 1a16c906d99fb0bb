using System.Runtime.InteropServices;
using QuantPeft.Trainers.Model;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Generation;

/// <summary>What one generation produced.</summary>
/// <param name="Tokens">The new token ids, without the stop token.</param>
/// <param name="StoppedBy">The stop id that ended it, or null when the token budget ran out.</param>
/// <param name="Seconds">Wall time of the whole generation (prompt included).</param>
public sealed record GenerationResult(IReadOnlyList<int> Tokens, int? StoppedBy, double Seconds);

/// <summary>
/// Autoregressive generation with a <see cref="KvCache"/>: the prompt runs through the model once, then each new token
/// alone. The cache can be kept between calls (a chat), so each turn only runs its own tokens.
/// </summary>
public sealed class TextGenerator : IDisposable
{
    private readonly CausalLm _model;
    private readonly int _vocabLimit;
    private readonly List<int> _context = [];

    /// <summary>A generator over <paramref name="model"/>; only ids below <paramref name="vocabLimit"/> are produced (the tokenizer's size).</summary>
    public TextGenerator(CausalLm model, int vocabLimit)
    {
        _model = model;
        _vocabLimit = vocabLimit;
        Cache = new KvCache(model.Layers.Count);
    }

    /// <summary>The keys and values of every token seen so far.</summary>
    public KvCache Cache { get; }

    /// <summary>Every token seen so far (prompts and generated tokens), in order.</summary>
    public IReadOnlyList<int> Context => _context;

    /// <summary>Forgets the conversation.</summary>
    public void Reset()
    {
        Cache.Clear();
        _context.Clear();
    }

    /// <summary>
    /// Feeds <paramref name="prompt"/> after what is cached and generates up to <paramref name="maxNewTokens"/> tokens, stopping
    /// at any id of <paramref name="stopIds"/> (which is fed to the cache, as the turn's end); <paramref name="onToken"/> sees each new token.
    /// </summary>
    /// <exception cref="ModelException">The conversation would exceed <c>max_position_embeddings</c>.</exception>
    public GenerationResult Generate(IReadOnlyList<int> prompt, int maxNewTokens, SamplingOptions sampling, IReadOnlySet<int> stopIds, Action<int>? onToken = null)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var sampler = new TokenSampler(sampling);
        var produced = new List<int>();
        int? stop = null;
        using var noGrad = no_grad();
        using var frozen = QuantPeft.Trainers.Adapters.FrozenAdapterWeights.Open();
        long limit = _model.Spec.MaxPositionEmbeddings;
        int[] next = [.. prompt];
        for (int step = 0; step < maxNewTokens && Cache.Length + next.Length <= limit; step++)
        {
            float[] logits = LastLogits(next);
            _context.AddRange(next);
            int token = sampler.Next(logits, _context);
            if (stopIds.Contains(token))
            {
                stop = token;
                Feed([token]);
                break;
            }
            produced.Add(token);
            onToken?.Invoke(token);
            next = [token];
            if (step == maxNewTokens - 1) Feed(next);   // the cache holds the whole answer for the next turn
        }
        return new GenerationResult(produced, stop, clock.Elapsed.TotalSeconds);
    }

    /// <summary>Runs <paramref name="tokens"/> into the cache without generating (the closing of a chat turn).</summary>
    public void Append(IReadOnlyList<int> tokens)
    {
        if (tokens.Count == 0) return;
        using var noGrad = no_grad();
        Feed([.. tokens]);
    }

    private void Feed(int[] tokens)
    {
        if (Cache.Length + tokens.Length > _model.Spec.MaxPositionEmbeddings) return;
        LastLogits(tokens);
        _context.AddRange(tokens);
    }

    // Logits of the last of `tokens` (V, float32, the tokenizer's ids only) after running them through the cached model.
    private float[] LastLogits(int[] tokens)
    {
        using var scope = NewDisposeScope();
        var ids = tensor(tokens.Select(t => (long)t).ToArray(), [1, tokens.Length], device: _model.LmHeadWeight.device);
        var logits = _model.Forward(ids, Cache)[0, -1];
        if (_vocabLimit < logits.shape[0]) logits = logits.narrow(0, 0, _vocabLimit);
        using var host = logits.to(ScalarType.Float32).cpu().contiguous();
        return MemoryMarshal.Cast<byte, float>(host.bytes).ToArray();
    }

    /// <inheritdoc/>
    public void Dispose() => Cache.Dispose();
}
