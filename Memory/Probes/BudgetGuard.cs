using QuantPeft.Memory.Planning;

namespace QuantPeft.Memory.Probes;

/// <summary>The first time a run's measured memory passed its limit.</summary>
/// <param name="LimitBytes">The limit the run enforces (its <c>--ram</c> or <c>--vram</c> budget).</param>
/// <param name="PlannedBytes">The plan's predicted peak, or null when the run has no plan estimate.</param>
/// <param name="MeasuredBytes">The peak measured when the run was stopped.</param>
/// <param name="Phase">The phase that was running when the measured memory first passed the limit.</param>
public sealed record BudgetOverrun(long LimitBytes, long? PlannedBytes, long MeasuredBytes, string Phase)
{
    /// <summary>One line for the user: planned, measured, limit and phase.</summary>
    public string Describe() =>
        $"memory budget exceeded in {Phase}: measured {ByteSize.Format(MeasuredBytes)} against the budget of {ByteSize.Format(LimitBytes)}"
        + (PlannedBytes is long p ? $" (planned peak {ByteSize.Format(p)})" : "");
}

/// <summary>
/// Watches a training run's memory against its budget while it runs: a sampler reads the device's memory every
/// 2 ms (on the CPU the process's resident set and the kernel's high-water mark VmHWM, so a spike between two
/// samples is still seen; on CUDA the device's used bytes) and records the phase in which it first passed the
/// limit. The run asks <see cref="Overrun"/> at safe points (after setup, each step, each evaluation, the save) and
/// stops there: a step cannot be cut in the middle without losing it, so the guard reports, the trainer acts.
/// </summary>
/// <remarks>
/// What is measured is the whole process (CPU) or the whole device (CUDA), not the part above a baseline: the
/// budget a user gives is for everything the run holds, which is what the planner's peak (with its runtime overhead)
/// predicts.
/// </remarks>
public sealed class BudgetGuard : IDisposable
{
    private readonly Func<long> _read;
    private readonly Thread _sampler;
    private volatile bool _stop;
    private volatile string _phase = "setup";
    private long _peak;
    private BudgetOverrun? _overrun;
    private readonly object _gate = new();

    /// <summary>Starts watching.</summary>
    /// <param name="limitBytes">The budget the run must stay under.</param>
    /// <param name="plannedBytes">The plan's predicted peak (reported beside the measurement), or null.</param>
    /// <param name="kind">The device whose memory is read.</param>
    /// <param name="read">What to read instead of the device (for tests of the guard's logic), or null.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="limitBytes"/> is not positive.</exception>
    /// <exception cref="InvalidOperationException">CUDA was asked for but does not answer.</exception>
    public BudgetGuard(long limitBytes, long? plannedBytes, DeviceKind kind, Func<long>? read = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(limitBytes);
        LimitBytes = limitBytes;
        PlannedBytes = plannedBytes;
        _read = read ?? DeviceReader(kind);
        _peak = _read();
        Check();
        _sampler = new Thread(Sample) { IsBackground = true, Name = "qpeft-budget-guard" };
        _sampler.Start();
    }

    /// <summary>The budget enforced.</summary>
    public long LimitBytes { get; }

    /// <summary>The plan's predicted peak, if any.</summary>
    public long? PlannedBytes { get; }

    /// <summary>The highest memory measured so far (whole process or device).</summary>
    public long PeakBytes
    {
        get
        {
            Check();
            return Interlocked.Read(ref _peak);
        }
    }

    /// <summary>The phase now running (for the report of an overrun).</summary>
    public string Phase => _phase;

    /// <summary>Names the phase that starts now (<c>setup</c>, <c>step 3</c>, <c>eval after</c>, <c>save</c>).</summary>
    public void Enter(string phase)
    {
        Check();
        _phase = phase;
    }

    /// <summary>The first overrun, once the measured peak has passed the limit; else null. Reads the device once more first.</summary>
    public BudgetOverrun? Overrun
    {
        get
        {
            Check();
            lock (_gate) return _overrun is null ? null : _overrun with { MeasuredBytes = Interlocked.Read(ref _peak) };
        }
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
            Check();
            Thread.Sleep(2);
        }
    }

    private void Check()
    {
        long now = _read();
        long seen = Interlocked.Read(ref _peak);
        while (now > seen)
        {
            long prior = Interlocked.CompareExchange(ref _peak, now, seen);
            if (prior == seen) break;
            seen = prior;
        }
        if (now > LimitBytes)
            lock (_gate) _overrun ??= new BudgetOverrun(LimitBytes, PlannedBytes, now, _phase);
    }

    private static Func<long> DeviceReader(DeviceKind kind)
    {
        if (kind == DeviceKind.Cpu)
            return () => { ResidentMemory m = ProcessMemoryProbe.Read(); return Math.Max(m.CurrentBytes, m.PeakBytes); };
        CudaMemoryInfo info = CudaMemoryProbe.Query();
        if (!info.Available) throw new InvalidOperationException($"CUDA memory probe: {info.Reason}");
        return () => CudaMemoryProbe.Query() is { Available: true } i ? i.UsedBytes : 0;
    }
}
