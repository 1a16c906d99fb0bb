using QuantPeft.Memory.Planning;

namespace QuantPeft.Memory.Probes;

/// <summary>One named point of a measured run: the memory above the baseline then, and the peak of the phase that ended there.</summary>
/// <param name="Label">What had just finished (e.g. <c>setup</c>, <c>step 1</c>).</param>
/// <param name="CurrentBytes">Memory above the baseline at the mark.</param>
/// <param name="PhasePeakBytes">Highest memory above the baseline since the previous mark.</param>
/// <param name="Heap">On the CPU, the C heap's accounting at the mark (where glibc reports it): which share of the
/// resident set is live tensors and which is freed blocks the heap keeps.</param>
/// <param name="ManagedBytes">On the CPU, the .NET heap's committed bytes at the mark.</param>
/// <param name="PhaseLivePeakBytes">On the CPU, the highest live C-heap bytes (in use + mapped, <see cref="NativeHeapStats.LiveBytes"/>)
/// sampled in the phase, above the baseline's: the tensors alive at once, without the freed blocks the heap keeps.</param>
public sealed record PeakMark(string Label, long CurrentBytes, long PhasePeakBytes, NativeHeapStats? Heap = null, long? ManagedBytes = null,
    long? PhaseLivePeakBytes = null);

/// <summary>
/// The peak memory of a training run above a baseline taken before the model loads, on the device that trains:
/// on <see cref="DeviceKind.Cpu"/> the process's resident set (<see cref="ProcessMemoryProbe"/>: sampled VmRSS
/// plus the kernel's high-water mark where it can be reset), on <see cref="DeviceKind.Cuda"/> the device's used
/// memory from <c>cudaMemGetInfo</c>, sampled. <see cref="Mark"/> closes a phase so that the load and each step
/// can be told apart.
/// </summary>
public sealed class TrainingPeakProbe : IDisposable
{
    private readonly ProcessMemoryProbe? _process;
    private readonly Func<long> _read;
    private readonly Thread _sampler;
    private volatile bool _stop;
    private long _runMax;
    private long _phaseMax;
    private long _phaseLiveMax;
    private readonly bool _sampleHeap;
    private readonly List<PeakMark> _marks = [];

    private TrainingPeakProbe(DeviceKind kind)
    {
        DeviceKind = kind;
        if (kind == DeviceKind.Cpu)
        {
            // The process probe keeps the run's total (with the kernel's high-water mark, which also sees spikes
            // between samples); this probe's own sampler splits the run into phases.
            _process = new ProcessMemoryProbe(TimeSpan.FromMilliseconds(2));
            BaselineBytes = _process.BaselineBytes;
            BaselineHeap = NativeHeap.Read();
            _sampleHeap = BaselineHeap is not null;
            _read = () => ProcessMemoryProbe.Read().CurrentBytes;
            Source = _process.HighWaterMarkReset ? "VmRSS sampled every 2 ms, and VmHWM (reset at the baseline)" : "VmRSS sampled every 2 ms (VmHWM not resettable here)";
        }
        else
        {
            CudaMemoryInfo info = CudaMemoryProbe.Query();
            if (!info.Available) throw new InvalidOperationException($"CUDA memory probe: {info.Reason}");
            BaselineBytes = info.UsedBytes;
            _read = () => CudaMemoryProbe.Query() is { Available: true } i ? i.UsedBytes : 0;
            Source = "cudaMemGetInfo used bytes sampled every 2 ms";
        }
        _runMax = _phaseMax = BaselineBytes;
        _sampler = new Thread(Sample) { IsBackground = true, Name = "qpeft-peak-probe" };
        _sampler.Start();
    }

    /// <summary>Takes the baseline now and starts sampling.</summary>
    /// <exception cref="InvalidOperationException">CUDA was asked for but does not answer.</exception>
    /// <exception cref="PlatformNotSupportedException">CPU was asked for on a system without /proc.</exception>
    public static TrainingPeakProbe Start(DeviceKind kind) => new(kind);

    /// <summary>The device measured.</summary>
    public DeviceKind DeviceKind { get; }

    /// <summary>What the numbers are read from.</summary>
    public string Source { get; }

    /// <summary>Memory in use when the probe started (the runtime, before the model).</summary>
    public long BaselineBytes { get; }

    /// <summary>On the CPU, the C heap's accounting when the probe started (null elsewhere, or without glibc's <c>mallinfo2</c>).</summary>
    public NativeHeapStats? BaselineHeap { get; private init; }

    /// <summary>Highest memory above the baseline since the start.</summary>
    public long PeakAboveBaselineBytes
    {
        get
        {
            long sampled = Math.Max(Interlocked.Read(ref _runMax), _read()) - BaselineBytes;
            return Math.Max(0, Math.Max(sampled, _process?.PeakAboveBaselineBytes ?? 0));
        }
    }

    /// <summary>The phases closed so far.</summary>
    public IReadOnlyList<PeakMark> Marks => _marks;

    /// <summary>Closes the current phase under <paramref name="label"/> and starts the next one at the current level.</summary>
    public PeakMark Mark(string label)
    {
        long current = _read();
        long phase = Math.Max(Interlocked.Exchange(ref _phaseMax, current), current);
        bool cpu = DeviceKind == DeviceKind.Cpu;
        NativeHeapStats? heap = cpu ? NativeHeap.Read() : null;
        long? live = null;
        if (_sampleHeap && heap is { } h && BaselineHeap is { } b)
            live = Math.Max(Interlocked.Exchange(ref _phaseLiveMax, h.LiveBytes), h.LiveBytes) - b.LiveBytes;
        var mark = new PeakMark(label, Math.Max(0, current - BaselineBytes), Math.Max(0, phase - BaselineBytes),
            heap, cpu ? GC.GetGCMemoryInfo().TotalCommittedBytes : null, live);
        _marks.Add(mark);
        return mark;
    }

    /// <summary>Stops sampling.</summary>
    public void Dispose()
    {
        _stop = true;
        _sampler.Join();
        _process?.Dispose();
    }

    private void Sample()
    {
        while (!_stop)
        {
            long now = _read();
            Raise(ref _runMax, now);
            Raise(ref _phaseMax, now);
            if (_sampleHeap && NativeHeap.Read() is { } heap) Raise(ref _phaseLiveMax, heap.LiveBytes);
            Thread.Sleep(2);
        }
    }

    private static void Raise(ref long max, long value)
    {
        long seen = Interlocked.Read(ref max);
        while (value > seen)
        {
            long prior = Interlocked.CompareExchange(ref max, value, seen);
            if (prior == seen) return;
            seen = prior;
        }
    }
}
