namespace QuantPeft.Trainers.Adapters;

/// <summary>
/// A span of no-grad forwards during which no adapter weight changes (generation: one forward per new token), so a
/// layer may reuse what it computes from its own weights instead of recomputing it each forward. DoRA's row norms of
/// W₀ + s·BA decode and reduce the whole base weight; computed once per span, greedy exact-match evaluation and
/// <c>qpeft generate</c> no longer dequantize every projection for every token.
/// </summary>
/// <remarks>
/// Spans are per thread and numbered; a layer keeps the number its value belongs to, so a value is never carried into
/// a later span, and nothing is reused outside one. Whoever opens a span promises not to change adapter weights in it.
/// </remarks>
public static class FrozenAdapterWeights
{
    [ThreadStatic] private static long t_current;
    private static long s_next;

    /// <summary>The open span's number on this thread; 0 when none is open.</summary>
    public static long Current => t_current;

    /// <summary>Opens a span on this thread until the result is disposed (spans nest; the inner one is new).</summary>
    public static IDisposable Open()
    {
        long previous = t_current;
        t_current = Interlocked.Increment(ref s_next);
        return new Span(previous);
    }

    private sealed class Span(long previous) : IDisposable
    {
        private bool _closed;

        public void Dispose()
        {
            if (_closed) return;
            _closed = true;
            t_current = previous;
        }
    }
}
