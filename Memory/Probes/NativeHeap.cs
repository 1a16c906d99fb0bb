using System.Runtime.InteropServices;

namespace QuantPeft.Memory.Probes;

/// <summary>The C heap's own accounting (glibc <c>mallinfo2</c>), in bytes.</summary>
/// <param name="ArenaBytes">Bytes the heap arenas hold from the kernel (<c>arena</c>): in use or free, resident unless trimmed.</param>
/// <param name="InUseBytes">Bytes of live blocks in the arenas (<c>uordblks</c>).</param>
/// <param name="FreeBytes">Bytes of freed blocks the arenas keep (<c>fordblks</c>).</param>
/// <param name="MappedBytes">Bytes of live blocks served by their own <c>mmap</c> (<c>hblkhd</c>); unmapped on free.</param>
public readonly record struct NativeHeapStats(long ArenaBytes, long InUseBytes, long FreeBytes, long MappedBytes)
{
    /// <summary>Bytes of live blocks, in arenas and mapped.</summary>
    public long LiveBytes => InUseBytes + MappedBytes;
}

/// <summary>
/// Makes the process's C heap track live memory, and reads its accounting. libtorch's CPU allocator is plain
/// <c>malloc</c>, so every CPU tensor is a C-heap block. glibc serves a block at or above its mmap threshold
/// with its own mapping, returned to the kernel on free; below it, from arenas whose freed pages stay resident.
/// By default the threshold is dynamic: each freed mapped block raises it to that block's size (up to 32 MiB on
/// 64-bit), and the trim threshold to twice that. After the first freed weight-sized tensor, every later tensor
/// under 32 MiB (activations, gradients, dequantized weights, optimizer temporaries) lands in an arena, and the
/// resident set keeps the high-water mark of all of them plus their fragmentation, run to run differently.
/// <see cref="Configure"/> (opt-in: <c>QPEFT_NATIVE_HEAP=pinned</c>, since faulting the pages in again on every large tensor costs
/// speed) pins glibc's documented static defaults (both thresholds 128 KiB), which turns the
/// dynamic raise off: blocks of 128 KiB and more are mapped and unmapped, arenas only hold small blocks, and the
/// resident set is what the planner prices (live tensors) plus the small-block heap.
/// </summary>
public static partial class NativeHeap
{
    /// <summary>glibc's static default mmap threshold (<c>DEFAULT_MMAP_THRESHOLD_MIN</c>): 128 KiB.</summary>
    public const int DefaultMmapThreshold = 128 * 1024;

    /// <summary>glibc's static default trim threshold (<c>DEFAULT_TRIM_THRESHOLD</c>): 128 KiB.</summary>
    public const int DefaultTrimThreshold = 128 * 1024;

    // mallopt parameter numbers from glibc's malloc.h.
    private const int MTrimThreshold = -1;
    private const int MMmapThreshold = -3;

    private static bool _available = OperatingSystem.IsLinux();
    private static bool _configured;

    /// <summary>Whether <see cref="Configure"/> has pinned the thresholds in this process.</summary>
    public static bool IsConfigured => _configured;

    /// <summary>
    /// Pins the mmap and trim thresholds (default: glibc's static defaults) so that freed large blocks go back to
    /// the kernel. Call it at process start, before the first large tensor. Returns false, changing nothing, where
    /// the C library is not glibc (no <c>mallopt</c>) or refuses a value.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">A threshold is not positive.</exception>
    public static bool Configure(int mmapThreshold = DefaultMmapThreshold, int trimThreshold = DefaultTrimThreshold)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(mmapThreshold);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(trimThreshold);
        if (!_available) return false;
        try
        {
            // Setting either value by hand is what switches glibc's dynamic adjustment off (mp_.no_dyn_threshold).
            bool ok = MallOpt(MMmapThreshold, mmapThreshold) == 1 && MallOpt(MTrimThreshold, trimThreshold) == 1;
            _configured |= ok;
            return ok;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            _available = false;
            return false;
        }
    }

    /// <summary>The C heap's accounting now, or null where the C library has no <c>mallinfo2</c> (not glibc ≥ 2.33).</summary>
    public static NativeHeapStats? Read()
    {
        if (!_available) return null;
        try
        {
            MallInfo2 m = MallInfo2Native();
            return new NativeHeapStats((long)m.Arena, (long)m.Uordblks, (long)m.Fordblks, (long)m.Hblkhd);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return null;
        }
    }

    private static long _residentOutsideHeap = -1;

    // The resident set at the last full check (or trim) of TrimIfRetainedAbove.
    private static long _checkedResident;

    /// <summary>
    /// Records how much of the resident set is not the C heap's live blocks, right after a <see cref="Trim"/> (the
    /// runtime, the heap's partly used pages), so that <see cref="TrimIfRetainedAbove"/> can tell freed blocks the
    /// arenas keep resident from everything else. The trainer calls it once the model has loaded.
    /// </summary>
    public static void RecordResidentBaseline()
    {
        if (!Trim() || Read() is not { } heap) return;
        long resident = ProcessMemoryProbe.Read().CurrentBytes;
        _residentOutsideHeap = resident - heap.LiveBytes;
        Interlocked.Exchange(ref _checkedResident, resident);
    }

    /// <summary>
    /// Keeps the resident set within the live heap plus <paramref name="limitBytes"/> of freed blocks (plus what
    /// <see cref="RecordResidentBaseline"/> found outside the heap): trims (<see cref="Trim"/>) when the freed blocks
    /// kept resident, the resident set minus the live heap minus that outside part, pass
    /// <paramref name="limitBytes"/> − δ, where δ = <paramref name="limitBytes"/>/4. True when it trimmed.
    /// </summary>
    /// <remarks>
    /// Freed pages that stay resident without the resident set growing cost nothing the plan prices: the next
    /// allocations reuse them. So the full check (<c>mallinfo2</c>, which walks the arenas' free lists) runs only once
    /// the resident set has grown δ past where the last check left it; between checks a read of
    /// <c>/proc/self/statm</c> is all it costs. A check that finds at most <paramref name="limitBytes"/> − δ retained
    /// allows δ more growth before the next, so the resident set never passes the largest live heap plus the outside
    /// part plus <paramref name="limitBytes"/>: the bound an unconditional check gives. Many small decoder blocks
    /// (the demo model's) thus skip the check between most of them.
    /// </remarks>
    public static bool TrimIfRetainedAbove(long limitBytes)
    {
        if (_residentOutsideHeap < 0) return false;
        long resident = ResidentBytes();
        long delta = limitBytes / 4;
        if (resident < Interlocked.Read(ref _checkedResident) + delta || Read() is not { } heap) return false;
        long retained = resident - heap.LiveBytes - _residentOutsideHeap;
        bool trimmed = retained > limitBytes - delta && Trim();
        Interlocked.Exchange(ref _checkedResident, trimmed ? ResidentBytes() : resident);
        return trimmed;
    }

    // VmRSS from /proc/self/statm (its second field, in pages): one short read, cheaper than parsing /proc/self/status.
    private static long ResidentBytes()
    {
        Span<byte> buffer = stackalloc byte[128];
        int n;
        using (var file = new FileStream("/proc/self/statm", FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1))
            n = file.Read(buffer);
        int i = 0;
        while (i < n && buffer[i] != (byte)' ') i++;   // skip the size field
        long pages = 0;
        for (i++; i < n && buffer[i] is >= (byte)'0' and <= (byte)'9'; i++) pages = pages * 10 + (buffer[i] - '0');
        return pages * Environment.SystemPageSize;
    }

    /// <summary>
    /// Returns the free pages of every heap arena to the kernel (glibc <c>malloc_trim(0)</c>); false, doing nothing,
    /// where the C library has none. It costs a walk of the free blocks, and page faults when the memory is used again.
    /// </summary>
    public static bool Trim()
    {
        if (!_available) return false;
        try
        {
            MallocTrim(0);
            return true;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            _available = false;
            return false;
        }
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct MallInfo2
    {
        public nuint Arena, Ordblks, Smblks, Hblks, Hblkhd, Usmblks, Fsmblks, Uordblks, Fordblks, Keepcost;
    }

    [LibraryImport("libc", EntryPoint = "mallopt")]
    private static partial int MallOpt(int param, int value);

    [LibraryImport("libc", EntryPoint = "malloc_trim")]
    private static partial int MallocTrim(nuint pad);

    [LibraryImport("libc", EntryPoint = "mallinfo2")]
    private static partial MallInfo2 MallInfo2Native();
}
