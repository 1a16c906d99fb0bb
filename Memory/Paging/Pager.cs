using TorchSharp;
using static TorchSharp.torch;

namespace QuantPeft.Memory.Paging;

/// <summary>
/// Keeps tensors (optimizer state) in host memory or on disk and brings only the pages in use to the
/// device, under an explicit byte budget: least-recently-used pages are written back and dropped to make
/// room, and the next pages can be prefetched on a background task while the current ones are used.
/// </summary>
/// <remarks>
/// Invariant: resident bytes never exceed <see cref="PagerOptions.BudgetBytes"/> (checked before every load;
/// <see cref="PeakResidentBytes"/> records the largest value reached). Pages acquired together are pinned
/// and never evicted until their lease ends. Copies between backing and device are exact (<c>copy_</c> of
/// the same dtype), so paging never changes a value. On a CPU-only machine the device copy is a separate
/// CPU tensor, so residency is modelled explicitly rather than left to the OS.
/// </remarks>
public sealed class Pager : IDisposable
{
    private readonly object _gate = new();
    private readonly List<Page> _pages = [];
    private readonly string? _directory;
    private readonly bool _ownsDirectory;
    private Task _prefetch = Task.CompletedTask;
    private long _clock;
    private bool _disposed;

    /// <summary>Creates an empty pager.</summary>
    /// <exception cref="ArgumentException">Negative budget, or pinned backing without CUDA.</exception>
    public Pager(PagerOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.BudgetBytes < 0)
            throw new ArgumentException($"pager budget must be >= 0 bytes, found {options.BudgetBytes}", nameof(options));
        Options = options;
        Backing = options.Backing switch
        {
            // Pinned host pages serve a CUDA device (asynchronous copies); a CPU run pages to a file even beside a GPU.
            PageBacking.Auto => options.Device.type == DeviceType.CUDA ? PageBacking.PinnedHost : PageBacking.MappedFile,
            PageBacking.PinnedHost when !cuda.is_available() =>
                throw new ArgumentException("pinned host backing needs CUDA (pin_memory() is unavailable on a CPU-only build)", nameof(options)),
            var b => b,
        };
        if (Backing == PageBacking.MappedFile)
        {
            _ownsDirectory = options.Directory is null;
            _directory = options.Directory ?? Path.Combine(Path.GetTempPath(), "qpeft-pager-" + Guid.NewGuid().ToString("N"));
            System.IO.Directory.CreateDirectory(_directory);
        }
    }

    /// <summary>The settings.</summary>
    public PagerOptions Options { get; }

    /// <summary>The backing actually used (<see cref="PageBacking.Auto"/> resolved).</summary>
    public PageBacking Backing { get; }

    /// <summary>Bytes of pages resident on the device now.</summary>
    public long ResidentBytes { get; private set; }

    /// <summary>The largest <see cref="ResidentBytes"/> reached.</summary>
    public long PeakResidentBytes { get; private set; }

    /// <summary>Bytes of all backing copies.</summary>
    public long BackingBytes { get; private set; }

    /// <summary>Pages brought to the device (by acquire or prefetch).</summary>
    public long Loads { get; private set; }

    /// <summary>Pages dropped from the device to make room.</summary>
    public long Evictions { get; private set; }

    /// <summary>The largest single page, in bytes.</summary>
    public long LargestPageBytes { get; private set; }

    /// <summary>Allocates a zero-filled page; it starts out non-resident.</summary>
    public Page Allocate(string key, long[] shape, ScalarType dtype)
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            long count = shape.Aggregate(1L, (a, b) => a * b);
            Tensor backing;
            string? file = null;
            switch (Backing)
            {
                case PageBacking.MappedFile:
                    file = Path.Combine(_directory!, $"page-{_pages.Count:D6}.bin");
                    using (var fs = new FileStream(file, FileMode.CreateNew, FileAccess.ReadWrite))
                        fs.SetLength(Math.Max(1, count * ElementSize(dtype))); // a sparse file reads as zeros
                    backing = from_file(file, shared: true, size: count, dtype: dtype).reshape(shape);
                    break;
                case PageBacking.PinnedHost:
                    using (var plain = zeros(shape, dtype))
                        backing = plain.pin_memory();
                    break;
                default:
                    backing = zeros(shape, dtype);
                    break;
            }
            var page = new Page(key, shape, dtype, backing.DetachFromDisposeScope(), file);
            _pages.Add(page);
            BackingBytes += page.Bytes;
            LargestPageBytes = Math.Max(LargestPageBytes, page.Bytes);
            return page;
        }
    }

    /// <summary>
    /// Makes <paramref name="pages"/> resident and pins them until the lease is disposed. Pages are marked
    /// dirty (written back when evicted) because the caller may modify them.
    /// </summary>
    /// <exception cref="PagerBudgetException">The pages together exceed the budget.</exception>
    public PageLease Acquire(IReadOnlyList<Page> pages)
    {
        _prefetch.Wait();
        lock (_gate)
        {
            long total = pages.Distinct().Sum(p => p.Bytes);
            if (total > Options.BudgetBytes)
                throw new PagerBudgetException(
                    $"pager: pages [{string.Join(", ", pages.Select(p => p.Key))}] need {total} bytes together, " +
                    $"more than the device budget of {Options.BudgetBytes} bytes; raise the budget to at least {total}");
            foreach (var p in pages) p.Pins++;
            foreach (var p in pages)
            {
                if (!p.IsResident && !TryLoad(p))
                    throw new InvalidOperationException("pager: pinned pages leave no room although they fit the budget");
                p.Dirty = true;
                p.LastUse = ++_clock;
            }
            return new PageLease(this, pages);
        }
    }

    /// <summary>
    /// Starts loading <paramref name="pages"/> on a background task, as far as the budget allows without
    /// evicting pinned pages. Acquire waits for it, so a prefetch never races an acquisition.
    /// </summary>
    public void Prefetch(IReadOnlyList<Page> pages)
    {
        var list = pages.ToArray();
        _prefetch = _prefetch.ContinueWith(_ =>
        {
            lock (_gate)
            {
                if (_disposed) return;
                foreach (var p in list)
                {
                    if (p.IsResident) continue;
                    if (!TryLoad(p)) break;
                    p.LastUse = ++_clock;
                }
            }
        }, TaskScheduler.Default);
    }

    internal void Release(IReadOnlyList<Page> pages)
    {
        lock (_gate)
            foreach (var p in pages) p.Pins--;
    }

    // Evicts least-recently-used unpinned pages until p fits, then copies it in. False if it cannot fit.
    private bool TryLoad(Page p)
    {
        while (ResidentBytes + p.Bytes > Options.BudgetBytes)
        {
            var victim = _pages.Where(x => x.IsResident && x.Pins == 0).MinBy(x => x.LastUse);
            if (victim is null) return false;
            Evict(victim);
        }
        var copy = empty(p.Shape, p.DType, Options.Device);
        // From pinned pages the upload is asynchronous on the device's current stream, which orders it before the
        // update that reads it; the host goes on to the next page (or the prefetch task returns) meanwhile.
        copy.copy_(p.Backing, Backing == PageBacking.PinnedHost);
        p.ResidentCopy = copy.DetachFromDisposeScope();
        p.Dirty = false;
        ResidentBytes += p.Bytes;
        PeakResidentBytes = Math.Max(PeakResidentBytes, ResidentBytes);
        Loads++;
        return true;
    }

    private void Evict(Page p)
    {
        if (p.Dirty) p.Backing.copy_(p.ResidentCopy!);
        p.ResidentCopy!.Dispose();
        p.ResidentCopy = null;
        p.Dirty = false;
        ResidentBytes -= p.Bytes;
        Evictions++;
    }

    /// <summary>Writes resident pages back (if dirty) and drops them from the device.</summary>
    public void EvictAll()
    {
        _prefetch.Wait();
        lock (_gate)
            foreach (var p in _pages.Where(x => x.IsResident && x.Pins == 0).ToList()) Evict(p);
    }

    /// <summary>Frees every page and deletes the page files.</summary>
    public void Dispose()
    {
        try { _prefetch.Wait(); } catch (AggregateException) { }
        lock (_gate)
        {
            if (_disposed) return;
            _disposed = true;
            foreach (var p in _pages)
            {
                p.ResidentCopy?.Dispose();
                p.Backing.Dispose();
            }
            _pages.Clear();
        }
        if (_directory is not null)
        {
            foreach (var f in System.IO.Directory.EnumerateFiles(_directory, "page-*.bin")) File.Delete(f);
            if (_ownsDirectory) System.IO.Directory.Delete(_directory);
        }
    }

    private static long ElementSize(ScalarType dtype)
    {
        using var probe = empty(1, dtype);
        return probe.ElementSize;
    }
}
