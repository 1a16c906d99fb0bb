namespace QuantPeft.Memory.Paging;

/// <summary>Keeps a set of pages pinned (resident) until disposed.</summary>
public sealed class PageLease : IDisposable
{
    private readonly Pager _pager;
    private readonly IReadOnlyList<Page> _pages;
    private bool _released;

    internal PageLease(Pager pager, IReadOnlyList<Page> pages)
    {
        _pager = pager;
        _pages = pages;
    }

    /// <summary>Unpins the pages; they stay resident until evicted.</summary>
    public void Dispose()
    {
        if (_released) return;
        _released = true;
        _pager.Release(_pages);
    }
}
