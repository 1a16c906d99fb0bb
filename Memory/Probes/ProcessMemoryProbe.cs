using System.Globalization;

namespace QuantPeft.Memory.Probes;

/// <summary>A reading of the process's resident memory.</summary>
/// <param name="CurrentBytes">VmRSS: resident now.</param>
/// <param name="PeakBytes">VmHWM: the kernel's resident high-water mark.</param>
public readonly record struct ResidentMemory(long CurrentBytes, long PeakBytes);

/// <summary>
/// Measures host memory of this process from <c>/proc/self/status</c>: a baseline taken before the model
/// loads, and a sampler thread that records the highest VmRSS above it. The kernel's own high-water mark
/// (VmHWM) is reset at the baseline where the kernel allows it (<c>/proc/self/clear_refs</c> ← 5) and is
/// folded into the peak, so a spike between two samples is still seen.
/// </summary>
public sealed class ProcessMemoryProbe : IDisposable
{
    private readonly Thread _sampler;
    private readonly TimeSpan _interval;
    private volatile bool _stop;
    private long _maxRss;

    /// <summary>Resident bytes when the probe started.</summary>
    public long BaselineBytes { get; }

    /// <summary>Whether the kernel's high-water mark was reset at the baseline (then <see cref="PeakAboveBaselineBytes"/> can use it).</summary>
    public bool HighWaterMarkReset { get; }

    /// <summary>Whether /proc/self/status is readable (Linux).</summary>
    public static bool IsSupported => File.Exists("/proc/self/status");

    /// <summary>Takes the baseline and starts sampling every <paramref name="interval"/> (default 5 ms).</summary>
    /// <exception cref="PlatformNotSupportedException">No /proc/self/status (not Linux).</exception>
    public ProcessMemoryProbe(TimeSpan? interval = null)
    {
        if (!IsSupported) throw new PlatformNotSupportedException("process memory probe: /proc/self/status is not available on this system");
        _interval = interval ?? TimeSpan.FromMilliseconds(5);
        HighWaterMarkReset = TryResetHighWaterMark();
        BaselineBytes = Read().CurrentBytes;
        _maxRss = BaselineBytes;
        _sampler = new Thread(Sample) { IsBackground = true, Name = "qpeft-rss-probe" };
        _sampler.Start();
    }

    /// <summary>The highest resident size seen so far minus the baseline (never negative).</summary>
    public long PeakAboveBaselineBytes
    {
        get
        {
            ResidentMemory now = Read();
            long peak = Math.Max(Interlocked.Read(ref _maxRss), now.CurrentBytes);
            if (HighWaterMarkReset) peak = Math.Max(peak, now.PeakBytes);
            return Math.Max(0, peak - BaselineBytes);
        }
    }

    /// <summary>Reads VmRSS and VmHWM now.</summary>
    public static ResidentMemory Read()
    {
        long rss = 0, hwm = 0;
        foreach (string line in File.ReadLines("/proc/self/status"))
        {
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal)) rss = ParseKb(line);
            else if (line.StartsWith("VmHWM:", StringComparison.Ordinal)) hwm = ParseKb(line);
        }
        return new ResidentMemory(rss, hwm);
    }

    /// <summary>Stops the sampler.</summary>
    public void Dispose()
    {
        _stop = true;
        _sampler.Join();
    }

    private void Sample()
    {
        while (!_stop)
        {
            long rss = Read().CurrentBytes;
            long seen = Interlocked.Read(ref _maxRss);
            while (rss > seen)
            {
                long prior = Interlocked.CompareExchange(ref _maxRss, rss, seen);
                if (prior == seen) break;
                seen = prior;
            }
            Thread.Sleep(_interval);
        }
    }

    // "VmRSS:	  123456 kB"
    private static long ParseKb(string line)
    {
        string[] parts = line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
        return long.Parse(parts[1], CultureInfo.InvariantCulture) * 1024;
    }

    private static bool TryResetHighWaterMark()
    {
        try
        {
            File.WriteAllText("/proc/self/clear_refs", "5");
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }
}
